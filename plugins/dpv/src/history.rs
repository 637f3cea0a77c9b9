//! GetCorrespondenceStatusHistory: the statuses of the correspondences this system sent,
//! asked for by the senders' references (the message ids), mapped as the v3 integration point
//! maps them: `Created` is delivered (LEVERT), `Read` is read (LEST), anything else is ANNET.

use eformidling_sdk::types::{Failure, Pending, Status, StatusEvent};

use crate::insert::CORRESPONDENCE_NS;
use eformidling_sdk::time;
use eformidling_sdk::xml::escape;

use crate::xml::{Texts, ends_with};

const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";

/// The request body for the references of `pending`.
pub fn request(pending: &[Pending]) -> String {
    let references: String = pending
        .iter()
        .map(|p| format!("<b:string>{}</b:string>", escape(&p.reference)))
        .collect();
    format!(
        "<CorrespondenceStatusHistoryRequest xmlns=\"{CORRESPONDENCE_NS}\">\
         <CorrespondenceSendersReferences xmlns:b=\"{ARRAYS_NS}\">{references}</CorrespondenceSendersReferences>\
         </CorrespondenceStatusHistoryRequest>"
    )
}

/// The status events of the answer, for the pending messages only.
pub fn events(answer: &Texts, pending: &[Pending]) -> Result<Vec<StatusEvent>, Failure> {
    let mut events = Vec::new();
    let mut reference: Option<&str> = None;
    let mut date: Option<&str> = None;
    for (path, text) in answer.entries() {
        if ends_with(path, &["StatusV2", "SendersReference"]) {
            reference = Some(text);
        } else if ends_with(path, &["StatusChangeV2", "StatusDate"]) {
            date = Some(text);
        } else if ends_with(path, &["StatusChangeV2", "StatusType"]) {
            let message = reference
                .and_then(|r| pending.iter().find(|p| p.reference == r))
                .ok_or_else(|| {
                    Failure::Retry(format!(
                        "the agency reported status {text} for a correspondence it did not name or that was not asked for"
                    ))
                })?;
            let at = date.and_then(time::parse_xs_datetime).ok_or_else(|| {
                Failure::Retry(format!("the agency's status {text} has no readable date"))
            })?;
            let (status, description) = match text.as_str() {
                "Created" => (Status::Levert, None),
                "Read" => (Status::Lest, None),
                other => (Status::Annet, Some(other.to_owned())),
            };
            events.push(StatusEvent {
                message_id: message.message_id.clone(),
                status,
                at,
                description,
            });
            date = None;
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str) -> Pending {
        Pending {
            message_id: id.into(),
            reference: id.into(),
            sent_at: 0,
        }
    }

    #[test]
    fn status_changes_map_to_the_integration_points_statuses() {
        let xml = br#"<R><b:List xmlns:b="x"><c:StatusV2 xmlns:c="y"><c:CorrespondenceID>1</c:CorrespondenceID>
            <c:SendersReference>m-1</c:SendersReference><c:StatusChanges>
            <c:StatusChangeV2><c:StatusDate>2026-01-01T10:00:00.000Z</c:StatusDate><c:StatusType>Created</c:StatusType></c:StatusChangeV2>
            <c:StatusChangeV2><c:StatusDate>2026-01-01T11:00:00Z</c:StatusDate><c:StatusType>Read</c:StatusType></c:StatusChangeV2>
            <c:StatusChangeV2><c:StatusDate>2026-01-01T12:00:00Z</c:StatusDate><c:StatusType>Confirmed</c:StatusType></c:StatusChangeV2>
            </c:StatusChanges></c:StatusV2></b:List></R>"#;
        let texts = Texts::read(xml).unwrap();
        let events = events(&texts, &[pending("m-1")]).unwrap();
        let statuses: Vec<_> = events
            .iter()
            .map(|e| (e.status, e.description.clone()))
            .collect();
        assert_eq!(
            statuses,
            [
                (Status::Levert, None),
                (Status::Lest, None),
                (Status::Annet, Some("Confirmed".to_owned()))
            ]
        );
        assert_eq!(
            events[1].at,
            time::parse_xs_datetime("2026-01-01T11:00:00Z").unwrap()
        );
        assert!(events.iter().all(|e| e.message_id == "m-1"));
        assert!(matches!(
            super::events(&texts, &[pending("other")]),
            Err(Failure::Retry(_))
        ));
    }

    #[test]
    fn the_request_lists_the_references_escaped() {
        let body = request(&[pending("a&b"), pending("c")]);
        assert!(
            body.contains("<b:string>a&amp;b</b:string><b:string>c</b:string>"),
            "{body}"
        );
    }
}
