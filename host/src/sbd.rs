//! The Standard Business Document as the Next Move API takes it: reading, checking, and the
//! defaults the real integration point fills in on create.
//!
//! It is the host's model of a message's header, used by the API when a message comes in and by
//! the engine when a stored one goes out or a receipt goes back, so it lives beside both and
//! reports refusals as [`SbdError`], which the API turns into its error body.
//!
//! The SBD is kept as JSON (it travels on to the channel as JSON), and this module reads the few
//! fields the host acts on and writes back the defaults, leaving everything else as the archive
//! system sent it.

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::timefmt;

/// Why an SBD was refused.
#[derive(Debug)]
pub enum SbdError {
    /// A stored SBD cannot be read back: the store holds something else than it wrote.
    Unreadable(String),
    /// A rule with an exception of its own: the request is not JSON, the type is unknown, the
    /// standard does not fit the type, the expiry is past.
    Refused {
        /// The real integration point's exception name.
        exception: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Fields that break their constraints, reported together as bean validation does.
    Violations(Vec<Violation>),
}

impl SbdError {
    fn refused(exception: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            exception,
            message: message.into(),
        }
    }
}

/// One field that breaks its constraint.
#[derive(Debug)]
pub struct Violation {
    /// The field, as a path.
    pub field: String,
    /// The constraint's code (`NotNull`, `UUID`, …).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The value refused.
    pub rejected_value: Value,
}

impl Violation {
    fn new(field: &str, code: &'static str, message: impl Into<String>, value: Value) -> Self {
        Self {
            field: field.to_owned(),
            code,
            message: message.into(),
            rejected_value: value,
        }
    }
}

/// Business message types the API accepts, and whether a message of the type needs files.
const MESSAGE_TYPES: &[(&str, bool)] = &[
    ("arkivmelding", true),
    ("arkivmelding_kvittering", false),
    ("status", false),
    ("avtalt", false),
    ("digital", true),
    ("digital_dpv", true),
    ("print", true),
    ("innsynskrav", true),
    ("publisering", true),
    ("einnsyn_kvittering", false),
    ("dialogmelding", true),
    ("dialogmelding_kvittering", false),
];

/// The SBD's parts the host acts on.
#[derive(Clone, Debug)]
pub struct Sbd {
    /// The document as JSON, with defaults applied.
    pub json: Value,
    /// `documentIdentification.instanceIdentifier`.
    pub message_id: String,
    /// The ConversationId scope's instanceIdentifier.
    pub conversation_id: String,
    /// The ConversationId scope's identifier.
    pub process: String,
    /// `documentIdentification.standard`.
    pub standard: String,
    /// `documentIdentification.type`.
    pub message_type: String,
    /// The sender, qualified (`0192:…`).
    pub sender: String,
    /// The receiver, qualified, if any.
    pub receiver: Option<String>,
    /// `expectedResponseDateTime`, ms since the epoch.
    pub expires_at: Option<i64>,
}

impl Sbd {
    /// Whether a message of this type must carry files.
    pub fn needs_files(&self) -> bool {
        MESSAGE_TYPES
            .iter()
            .find(|(name, _)| *name == self.message_type)
            .is_some_and(|(_, files)| *files)
    }

    /// The business message (the object named after the type).
    pub fn business_message(&self) -> Option<&Value> {
        self.json.get(&self.message_type)
    }

    /// The business message's `hoveddokument`, the primary file's name.
    pub fn primary_document(&self) -> Option<&str> {
        self.business_message()?.get("hoveddokument")?.as_str()
    }

    /// The business message's `sikkerhetsnivaa`.
    pub fn security_level(&self) -> Option<i32> {
        self.business_message()?
            .get("sikkerhetsnivaa")?
            .as_i64()
            .and_then(|level| i32::try_from(level).ok())
    }

    /// Reads a stored SBD back.
    pub fn from_stored(text: &str) -> Result<Self, SbdError> {
        let json: Value = serde_json::from_str(text).map_err(|error| {
            SbdError::Unreadable(format!("a stored SBD is unreadable: {error}"))
        })?;
        read(json)
    }

    /// Reads an SBD from a request body, checks it, and fills in the defaults.
    pub fn from_request(body: &[u8], own_organisation: &str, now: i64) -> Result<Self, SbdError> {
        let mut json: Value = serde_json::from_slice(body).map_err(|error| {
            SbdError::refused(
                "org.springframework.http.converter.HttpMessageNotReadableException",
                format!("JSON parse error: {error}"),
            )
        })?;
        if !json.is_object() {
            return Err(SbdError::refused(
                "org.springframework.http.converter.HttpMessageNotReadableException",
                "JSON parse error: the StandardBusinessDocument must be an object",
            ));
        }
        apply_defaults(&mut json, own_organisation, now);
        let sbd = read(json)?;
        check(&sbd, now)?;
        Ok(sbd)
    }

    /// Sets `expectedResponseDateTime` to `at` unless the sender gave one.
    pub fn default_expiry(&mut self, at: i64) {
        if self.expires_at.is_none() {
            set_expected_response(&mut self.json, &timefmt::format_millis(at));
            self.expires_at = Some(at);
        }
    }
}

fn header_mut(json: &mut Value) -> &mut Value {
    let object = json.as_object_mut().expect("checked to be an object");
    object
        .entry("standardBusinessDocumentHeader")
        .or_insert_with(|| json!({}))
}

/// The defaults of the real `NextMoveOutMessageFactory`.
fn apply_defaults(json: &mut Value, own_organisation: &str, now: i64) {
    let header = header_mut(json);
    if !header.is_object() {
        return;
    }
    if header.get("headerVersion").is_none() {
        header["headerVersion"] = json!("1.0");
    }
    let sender_missing = header
        .get("sender")
        .and_then(Value::as_array)
        .is_none_or(|senders| senders.is_empty());
    if sender_missing {
        header["sender"] = json!([{
            "identifier": {"value": format!("0192:{own_organisation}"), "authority": "iso6523-actorid-upis"}
        }]);
    }
    if let Some(identification) = header
        .get_mut("documentIdentification")
        .filter(|d| d.is_object())
    {
        if text(identification.get("instanceIdentifier")).is_none() {
            identification["instanceIdentifier"] = json!(Uuid::new_v4().to_string());
        }
        identification["creationDateAndTime"] = json!(timefmt::format_millis(now));
    }
    if let Some(scopes) = header
        .pointer_mut("/businessScope/scope")
        .and_then(Value::as_array_mut)
    {
        for scope in scopes.iter_mut().filter(|s| s.is_object()) {
            if text(scope.get("instanceIdentifier")).is_none() {
                scope["instanceIdentifier"] = json!(Uuid::new_v4().to_string());
            }
        }
    }
}

fn set_expected_response(json: &mut Value, at: &str) {
    let Some(scope) = conversation_scope_mut(json) else {
        return;
    };
    let information = scope
        .as_object_mut()
        .expect("a scope is an object")
        .entry("scopeInformation")
        .or_insert_with(|| json!([]));
    if let Some(list) = information.as_array_mut() {
        match list.first_mut().filter(|first| first.is_object()) {
            Some(first) => first["expectedResponseDateTime"] = json!(at),
            None => list.push(json!({"expectedResponseDateTime": at})),
        }
    }
}

fn is_conversation_scope(scope: &Value) -> bool {
    scope
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind == "ConversationId" || kind == "CONVERSATION_ID")
}

fn conversation_scope_mut(json: &mut Value) -> Option<&mut Value> {
    json.pointer_mut("/standardBusinessDocumentHeader/businessScope/scope")?
        .as_array_mut()?
        .iter_mut()
        .find(|scope| is_conversation_scope(scope) && scope.is_object())
}

fn text(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn party(header: &Value, key: &str) -> Option<String> {
    let parties = header.get(key)?.as_array()?;
    text(parties.first()?.pointer("/identifier/value")).map(str::to_owned)
}

/// The first sender's and receiver's identifiers as a stored SBD names them (`value`, not
/// qualified), read without building the document's tree: every send needs them, and the
/// rest of the document is only passed on. A stored SBD is the checked object the API wrote;
/// text that is not such an object is unreadable.
pub fn stored_parties(text: &str) -> Result<(Option<String>, Option<String>), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Document {
        standard_business_document_header: Option<Header>,
    }
    #[derive(Deserialize)]
    struct Header {
        sender: Option<Value>,
        receiver: Option<Value>,
    }
    let document: Document = serde_json::from_str(text)
        .map_err(|error| format!("the stored SBD is unreadable: {error}"))?;
    Ok(match document.standard_business_document_header {
        Some(header) => (
            first_identifier(header.sender.as_ref()),
            first_identifier(header.receiver.as_ref()),
        ),
        None => (None, None),
    })
}

/// The first sender's and receiver's identifiers of `sbd`, as [`stored_parties`] reads them
/// from its text.
pub fn parties(sbd: &Value) -> (Option<String>, Option<String>) {
    let header = sbd.get("standardBusinessDocumentHeader");
    let of = |role: &str| first_identifier(header.and_then(|header| header.get(role)));
    (of("sender"), of("receiver"))
}

/// The identifier `value` of the first of `parties`.
fn first_identifier(parties: Option<&Value>) -> Option<String> {
    parties?
        .pointer("/0/identifier/value")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Reads the fields; violations are reported together, as bean validation does.
fn read(json: Value) -> Result<Sbd, SbdError> {
    static ABSENT: Value = Value::Null;
    let header = json
        .get("standardBusinessDocumentHeader")
        .unwrap_or(&ABSENT);
    let identification = header.get("documentIdentification").unwrap_or(&ABSENT);
    let mut errors = Vec::new();
    let field = |name: &str| format!("standardBusinessDocumentHeader.{name}");

    let message_type = text(identification.get("type"))
        .unwrap_or_default()
        .to_owned();
    if message_type.is_empty() {
        errors.push(Violation::new(
            &field("documentIdentification.type"),
            "NotNull",
            "must not be null",
            Value::Null,
        ));
    } else if !MESSAGE_TYPES.iter().any(|(name, _)| *name == message_type) {
        return Err(SbdError::refused(
            "UnknownMessageTypeException",
            format!("Unknown message type: {message_type}"),
        ));
    }
    let standard = text(identification.get("standard"))
        .unwrap_or_default()
        .to_owned();
    if standard.is_empty() {
        errors.push(Violation::new(
            &field("documentIdentification.standard"),
            "NotNull",
            "must not be null",
            Value::Null,
        ));
    } else if !message_type.is_empty() && !standard.ends_with(&format!("::{message_type}")) {
        return Err(SbdError::refused(
            "MessageTypeDoesNotFitDocumentTypeException",
            format!(
                "Standard '{standard}' does not fit message type '{message_type}': it must end with '::{message_type}'"
            ),
        ));
    }
    if !message_type.is_empty() && json.get(&message_type).is_none_or(|m| !m.is_object()) {
        errors.push(Violation::new(
            &message_type,
            "NotNull",
            format!("the business message {message_type:?} must be given as an object"),
            Value::Null,
        ));
    }
    let message_id = text(identification.get("instanceIdentifier"))
        .unwrap_or_default()
        .to_owned();
    if Uuid::parse_str(&message_id).is_err() {
        errors.push(Violation::new(
            &field("documentIdentification.instanceIdentifier"),
            "UUID",
            "must be a UUID",
            json!(message_id),
        ));
    }
    let scope = header
        .pointer("/businessScope/scope")
        .and_then(Value::as_array)
        .and_then(|scopes| scopes.iter().find(|s| is_conversation_scope(s)));
    let (conversation_id, process, expected) = match scope {
        Some(scope) => (
            text(scope.get("instanceIdentifier"))
                .unwrap_or_default()
                .to_owned(),
            text(scope.get("identifier")).unwrap_or_default().to_owned(),
            scope
                .get("scopeInformation")
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find_map(|i| text(i.get("expectedResponseDateTime")))
                })
                .map(str::to_owned),
        ),
        None => {
            errors.push(Violation::new(
                &field("businessScope.scope"),
                "ConversationIdScope",
                "a scope of type ConversationId is required",
                Value::Null,
            ));
            (String::new(), String::new(), None)
        }
    };
    if scope.is_some() && Uuid::parse_str(&conversation_id).is_err() {
        errors.push(Violation::new(
            &field("businessScope.scope[ConversationId].instanceIdentifier"),
            "SbdScopeConditionalInstanceIdentifierUuid",
            "must be a UUID",
            json!(conversation_id),
        ));
    }
    if scope.is_some() && process.is_empty() {
        errors.push(Violation::new(
            &field("businessScope.scope[ConversationId].identifier"),
            "NotNull",
            "the process must be given",
            Value::Null,
        ));
    }
    let sender = party(header, "sender").unwrap_or_default();
    let receiver = party(header, "receiver");
    let print_without_receiver = message_type == "print";
    if receiver.is_none() && !print_without_receiver {
        errors.push(Violation::new(
            &field("receiver"),
            "NotEmpty",
            "must not be empty",
            Value::Null,
        ));
    }
    let expires_at = match expected {
        Some(text) => match timefmt::parse_date_time(&text) {
            Ok(at) => Some(at),
            Err(reason) => {
                errors.push(Violation::new(
                    &field("businessScope.scope[ConversationId].scopeInformation.expectedResponseDateTime"),
                    "DateTime",
                    reason,
                    json!(text),
                ));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(SbdError::Violations(errors));
    }
    Ok(Sbd {
        json,
        message_id,
        conversation_id,
        process,
        standard,
        message_type,
        sender: qualified(&sender),
        receiver: receiver.as_deref().map(qualified),
        expires_at,
    })
}

/// Checks that need the time.
fn check(sbd: &Sbd, now: i64) -> Result<(), SbdError> {
    if let Some(expires) = sbd.expires_at.filter(|at| *at <= now) {
        return Err(SbdError::refused(
            "TimeToLiveException",
            format!(
                "expectedResponseDateTime ({}) is in the past",
                timefmt::format_millis(expires)
            ),
        ));
    }
    Ok(())
}

/// A bare 9-digit organisation number is `0192:` followed by it.
fn qualified(identifier: &str) -> String {
    if identifier.len() == 9 && identifier.bytes().all(|b| b.is_ascii_digit()) {
        format!("0192:{identifier}")
    } else {
        identifier.to_owned()
    }
}

/// The primary identifier of a qualified one: the organisation number of `0192:…[:part]`,
/// a national identity number as it is.
pub fn primary_identifier(qualified: &str) -> String {
    match qualified.split(':').collect::<Vec<_>>().as_slice() {
        [_icd, organisation, ..] => (*organisation).to_owned(),
        _ => qualified.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sbd_names_its_first_sender_and_receiver_as_given_stored_or_in_hand() {
        let sbd = json!({
            "standardBusinessDocumentHeader": {
                "headerVersion": "1.0",
                "sender": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910075918"}}],
                "receiver": [
                    {"identifier": {"value": "910076787"}},
                    {"identifier": {"value": "0192:987654321"}}
                ],
                "documentIdentification": {"type": "arkivmelding"}
            },
            "arkivmelding": {"sikkerhetsnivaa": 3, "hoveddokument": "a.pdf"}
        });
        assert_eq!(
            stored_parties(&sbd.to_string()),
            Ok((
                Some("0192:910075918".to_owned()),
                Some("910076787".to_owned())
            ))
        );
        let without = json!({"standardBusinessDocumentHeader": {"sender": [], "receiver": [{"identifier": {"value": 7}}]}});
        assert_eq!(stored_parties(&without.to_string()), Ok((None, None)));
        assert_eq!(stored_parties("{}"), Ok((None, None)));
        for document in [
            sbd,
            without,
            json!({}),
            json!({"standardBusinessDocumentHeader": null}),
        ] {
            assert_eq!(
                Ok(parties(&document)),
                stored_parties(&document.to_string()),
                "{document}"
            );
        }
        let unreadable = stored_parties("{\"standardBusinessDocumentHeader\": ").unwrap_err();
        assert!(
            unreadable.starts_with("the stored SBD is unreadable"),
            "{unreadable}"
        );
    }
}
