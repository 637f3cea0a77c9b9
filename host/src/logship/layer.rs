//! A `tracing` layer that ships the host's own log events, so code logs a status change or an
//! audit event once, with `tracing`, and it reaches both the local log and the central one.
//!
//! Events become Logstash-style JSON objects: `@timestamp`, `@version`, `level`, `logger_name`
//! (the target, so `tracing::info!(target: "STATUS", ...)` arrives as the Java integration
//! point's `STATUS` logger does), `message`, the fields of the enclosing spans outermost first
//! (the way the Java integration point's MDC carries `correlation_id`), then the event's own
//! fields. The shipper's own events are not shipped, so a failing connection cannot feed itself.

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::LogShipper;

/// Ships events at or above a level; see [`LogShipper::layer`].
pub struct ShipLayer {
    shipper: LogShipper,
    level: Level,
}

/// The fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl ShipLayer {
    pub(super) fn new(shipper: LogShipper, level: Level) -> Self {
        Self { shipper, level }
    }
}

impl<S> Layer<S> for ShipLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = Map::new();
        attributes.record(&mut JsonFields(&mut fields));
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        if let Some(span) = context.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonFields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() > self.level || metadata.target() == super::OWN_TARGET {
            return;
        }
        let mut timestamp = String::new();
        // Formatting into a String cannot fail.
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        let mut json = Map::new();
        json.insert("@timestamp".into(), timestamp.into());
        json.insert("@version".into(), "1".into());
        json.insert("level".into(), metadata.level().as_str().into());
        json.insert("logger_name".into(), metadata.target().into());
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    json.extend(fields.clone());
                }
            }
        }
        event.record(&mut JsonFields(&mut json));
        self.shipper.event(json);
    }
}

/// Records `tracing` fields as JSON values.
struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
