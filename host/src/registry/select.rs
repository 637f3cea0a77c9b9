//! Which of a receiver's records a message uses, by the Java integration point's rules.
//!
//! Sending looks the receiver up for the message's process and takes the first record that lists
//! the message's document type (the SBD's `standard`); no such record means the receiver does not
//! accept the message. Where only the receiver is known, its records are looked up without a
//! process and a DPI record is preferred, then one for the default arkivmelding process, then a
//! DPE one.

use super::model::ServiceRecord;

/// The default arkivmelding process (`difi.move.arkivmelding.default-process`).
pub const DEFAULT_ARKIVMELDING_PROCESS: &str =
    "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";

/// The first record whose document types include `document_type`.
pub fn for_document_type<'a>(
    records: &'a [ServiceRecord],
    document_type: &str,
) -> Option<&'a ServiceRecord> {
    records
        .iter()
        .find(|record| record.document_types.iter().any(|t| t == document_type))
}

/// The record picked without a process: DPI, else `default_process`, else DPE.
pub fn without_process<'a>(
    records: &'a [ServiceRecord],
    default_process: &str,
) -> Option<&'a ServiceRecord> {
    let first = |accept: &dyn Fn(&ServiceRecord) -> bool| records.iter().find(|r| accept(r));
    first(&|record| record.service_identifier() == "DPI")
        .or_else(|| first(&|record| record.process == default_process))
        .or_else(|| first(&|record| record.service_identifier() == "DPE"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::Service;

    fn record(channel: &str, process: &str, document_types: &[&str]) -> ServiceRecord {
        ServiceRecord {
            process: process.into(),
            document_types: document_types.iter().map(|t| t.to_string()).collect(),
            service: Service {
                identifier: channel.into(),
                ..Service::default()
            },
            ..ServiceRecord::default()
        }
    }

    #[test]
    fn sending_takes_the_first_record_listing_the_document_type() {
        let records = [
            record("DPE", "urn:p", &["urn:a"]),
            record("DPO", "urn:p", &["urn:b", "urn:c"]),
            record("DPV", "urn:p", &["urn:c"]),
        ];
        assert_eq!(
            for_document_type(&records, "urn:c")
                .unwrap()
                .service_identifier(),
            "DPO"
        );
        assert!(for_document_type(&records, "urn:d").is_none());
    }

    #[test]
    fn without_a_process_dpi_wins_then_the_default_process_then_dpe() {
        let default = DEFAULT_ARKIVMELDING_PROCESS;
        let dpe = record("DPE", "urn:einnsyn", &[]);
        let dpo = record("DPO", default, &[]);
        let dpv = record("DPV", "urn:other", &[]);
        let dpi = record("DPI", "urn:digitalpost", &[]);
        let pick = |records: &[ServiceRecord]| {
            without_process(records, default).map(|r| r.service_identifier().to_owned())
        };
        let all = [dpe.clone(), dpo.clone(), dpv.clone(), dpi];
        assert_eq!(pick(&all).as_deref(), Some("DPI"));
        let no_dpi = [dpe.clone(), dpv.clone(), dpo];
        assert_eq!(pick(&no_dpi).as_deref(), Some("DPO"));
        assert_eq!(pick(&[dpv.clone(), dpe]).as_deref(), Some("DPE"));
        assert_eq!(pick(&[dpv]), None);
    }
}
