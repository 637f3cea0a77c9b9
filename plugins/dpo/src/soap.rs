//! The broker service's SOAP 1.1 messages, and what its answers mean to the engine.
//!
//! Altinn 2's broker service takes the end-user system's name and password inside every
//! message (body parameters on the basic endpoint, SOAP headers on the streamed one), so the
//! envelopes carry the host's secret placeholders and never a secret. Altinn answers every
//! refusal as a SOAP fault with HTTP 500; whether it is worth trying again depends on the
//! fault, not the status code, so faults are classified here.

use eformidling_sdk::failure;
use eformidling_sdk::secret::secret_field_placeholder;
use eformidling_sdk::types::Failure;

use eformidling_sdk::xml::{self, escape};

/// The namespace of the operations, their parameters and the streamed headers.
pub const BROKER_NS: &str = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06";
/// The namespace of the broker's data types (manifest, recipients, search).
pub const BROKER_DATA_NS: &str = "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06";
/// The SOAP 1.1 envelope namespace.
const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The XOP namespace, for the attachment reference of an upload.
const XOP_NS: &str = "http://www.w3.org/2004/08/xop/include";
/// Altinn's error id for a wrong system user name or password.
const WRONG_CREDENTIALS_ERROR: &str = "989";

/// The SOAP action of operation `operation` of interface `interface`.
pub fn action(interface: &str, operation: &str) -> String {
    format!("\"{BROKER_NS}/{interface}/{operation}\"")
}

/// The basic endpoint's interface.
pub const BASIC: &str = "IBrokerServiceExternalBasic";
/// The streamed endpoint's interface.
pub const STREAMED: &str = "IBrokerServiceExternalBasicStreamed";

/// Who acts: the end-user system's credentials (as placeholders) and the organisation.
pub struct System<'a> {
    /// The name of the username/password secret granted to this plugin.
    pub secret: &'a str,
    /// The organisation number the system acts for.
    pub reportee: &'a str,
}

impl System<'_> {
    fn user(&self) -> String {
        secret_field_placeholder(self.secret, "username")
    }

    fn password(&self) -> String {
        secret_field_placeholder(self.secret, "password")
    }
}

/// The broker service a file belongs to.
pub struct Service<'a> {
    /// The external service code (4192 for eFormidling).
    pub code: &'a str,
    /// The external service edition code (270815).
    pub edition: &'a str,
}

fn envelope(header: &str, body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Header>{header}</soap:Header>\
         <soap:Body>{body}</soap:Body></soap:Envelope>"
    )
    .into_bytes()
}

/// The manifest of a file: the `BrokerServiceManifest` both the initiation and the package's
/// `manifest.xml` hold.
pub fn manifest(service: &Service, reportee: &str, senders_reference: &str, file: &str) -> String {
    format!(
        "<ExternalServiceCode>{}</ExternalServiceCode>\
         <ExternalServiceEditionCode>{}</ExternalServiceEditionCode>\
         <FileList><File><FileName>{}</FileName></File></FileList>\
         <Reportee>{}</Reportee><SendersReference>{}</SendersReference>",
        escape(service.code),
        escape(service.edition),
        escape(file),
        escape(reportee),
        escape(senders_reference),
    )
}

/// The recipient list of a file.
pub fn recipients(party: &str) -> String {
    format!(
        "<Recipient><PartyNumber>{}</PartyNumber></Recipient>",
        escape(party)
    )
}

/// `InitiateBrokerServiceBasic`: announces a file from `system` to `recipient`.
pub fn initiate(
    system: &System,
    service: &Service,
    senders_reference: &str,
    file: &str,
    recipient: &str,
) -> Vec<u8> {
    envelope(
        "",
        &format!(
            "<InitiateBrokerServiceBasic xmlns=\"{BROKER_NS}\">\
             <systemUserName>{}</systemUserName><systemPassword>{}</systemPassword>\
             <brokerServiceInitiation>\
             <Manifest xmlns=\"{BROKER_DATA_NS}\">{}</Manifest>\
             <RecipientList xmlns=\"{BROKER_DATA_NS}\">{}</RecipientList>\
             </brokerServiceInitiation></InitiateBrokerServiceBasic>",
            system.user(),
            system.password(),
            manifest(service, system.reportee, senders_reference, file),
            recipients(recipient),
        ),
    )
}

/// The envelope of `UploadFileStreamedBasic`, whose data is the attachment `content_id`.
pub fn upload(system: &System, reference: &str, file: &str, content_id: &str) -> Vec<u8> {
    envelope(
        &format!(
            "<FileName xmlns=\"{BROKER_NS}\">{}</FileName>\
             <Reference xmlns=\"{BROKER_NS}\">{}</Reference>\
             <Reportee xmlns=\"{BROKER_NS}\">{}</Reportee>\
             <SystemPassword xmlns=\"{BROKER_NS}\">{}</SystemPassword>\
             <SystemUserName xmlns=\"{BROKER_NS}\">{}</SystemUserName>",
            escape(file),
            escape(reference),
            escape(system.reportee),
            system.password(),
            system.user(),
        ),
        &format!(
            "<StreamedPayloadBasicBE xmlns=\"{BROKER_NS}\"><DataStream>\
             <xop:Include xmlns:xop=\"{XOP_NS}\" href=\"cid:{}\"/>\
             </DataStream></StreamedPayloadBasicBE>",
            escape(content_id)
        ),
    )
}

/// `GetAvailableFilesBasic`: the files uploaded to `system`'s organisation and not yet
/// confirmed, of `service`.
pub fn available_files(system: &System, service: &Service) -> Vec<u8> {
    envelope(
        "",
        &format!(
            "<GetAvailableFilesBasic xmlns=\"{BROKER_NS}\">\
             <systemUserName>{}</systemUserName><systemPassword>{}</systemPassword>\
             <searchParameters xmlns:d=\"{BROKER_DATA_NS}\">\
             <d:ExternalServiceCode>{}</d:ExternalServiceCode>\
             <d:ExternalServiceEditionCode>{}</d:ExternalServiceEditionCode>\
             <d:FileStatus>Uploaded</d:FileStatus><d:Reportee>{}</d:Reportee>\
             </searchParameters></GetAvailableFilesBasic>",
            system.user(),
            system.password(),
            escape(service.code),
            escape(service.edition),
            escape(system.reportee),
        ),
    )
}

/// `DownloadFileStreamedBasic` or `ConfirmDownloadedBasic` (`operation`) of file `reference`.
pub fn file_operation(system: &System, operation: &str, reference: &str) -> Vec<u8> {
    envelope(
        "",
        &format!(
            "<{operation} xmlns=\"{BROKER_NS}\">\
             <systemUserName>{}</systemUserName><systemPassword>{}</systemPassword>\
             <fileReference>{}</fileReference><reportee>{}</reportee></{operation}>",
            system.user(),
            system.password(),
            escape(reference),
            escape(system.reportee),
        ),
    )
}

/// A file the broker lists as available.
#[derive(Debug, PartialEq, Eq)]
pub struct AvailableFile {
    /// The broker's reference, used to download and confirm it.
    pub reference: String,
    /// The sender's own reference (`SendersReference`).
    pub senders_reference: String,
}

/// The files of a `GetAvailableFilesBasic` answer.
pub fn parse_available(answer: &str) -> Vec<AvailableFile> {
    xml::contents(answer, "BrokerServiceAvailableFile")
        .into_iter()
        .filter_map(|file| {
            Some(AvailableFile {
                reference: xml::first_text(file, "FileReference")?,
                senders_reference: xml::first_text(file, "SendersReference").unwrap_or_default(),
            })
        })
        .collect()
}

/// The classification of an answer that is not a success. Altinn's SOAP faults come with
/// HTTP 500: a `Client` fault (the request is wrong, Altinn's checks refused it) is permanent,
/// a wrong system password is a credentials problem, a `Server` fault may pass. Anything else
/// follows the SDK's HTTP rules.
pub fn refusal(status: u16, body: &[u8], size_limit: Option<u64>) -> Failure {
    let text = String::from_utf8_lossy(body);
    let Some(fault) = xml::contents(&text, "Fault").into_iter().next() else {
        return failure::from_status(status, body, size_limit);
    };
    let code = xml::first_text(fault, "faultcode").unwrap_or_default();
    let reason = xml::first_text(fault, "AltinnErrorMessage")
        .or_else(|| xml::first_text(fault, "faultstring"))
        .unwrap_or_else(|| failure::excerpt(body));
    let error_id = xml::first_text(fault, "ErrorID");
    let described = match &error_id {
        Some(id) => format!("Altinn error {id}: {reason}"),
        None => reason,
    };
    if error_id.as_deref() == Some(WRONG_CREDENTIALS_ERROR) {
        return Failure::Unauthorized(described);
    }
    let local_code = code.rsplit(':').next().unwrap_or_default();
    match local_code {
        "Server" | "Receiver" => Failure::Retry(described),
        _ => Failure::Reject(described),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULT: &str = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
        <s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang=\"en-US\">No broker service</faultstring>\
        <detail><AltinnFault xmlns=\"x\"><AltinnErrorMessage>No broker service exists with external \
        service code 4192 and edition 1</AltinnErrorMessage><ErrorID>30011</ErrorID></AltinnFault></detail>\
        </s:Fault></s:Body></s:Envelope>";

    #[test]
    fn client_faults_are_permanent_with_altinns_reason() {
        match refusal(500, FAULT.as_bytes(), None) {
            Failure::Reject(reason) => assert_eq!(
                reason,
                "Altinn error 30011: No broker service exists with external service code 4192 and edition 1"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_credentials_and_server_faults_and_outages_are_told_apart() {
        let wrong = FAULT.replace("30011", "989");
        assert!(matches!(
            refusal(500, wrong.as_bytes(), None),
            Failure::Unauthorized(_)
        ));
        let server = FAULT.replace("s:Client", "s:Server");
        assert!(matches!(
            refusal(500, server.as_bytes(), None),
            Failure::Retry(_)
        ));
        assert!(matches!(refusal(503, b"busy", None), Failure::Retry(_)));
        assert!(matches!(
            refusal(413, b"too big", Some(7)),
            Failure::TooLarge(7)
        ));
    }

    #[test]
    fn envelopes_carry_placeholders_not_secrets_and_escape_values() {
        let system = System {
            secret: "dpo",
            reportee: "910075918",
        };
        let service = Service {
            code: "4192",
            edition: "270815",
        };
        let body =
            String::from_utf8(initiate(&system, &service, "a<b", "sbd.zip", "910076787")).unwrap();
        assert!(body.contains("<systemUserName>{{secret:dpo.username}}</systemUserName>"));
        assert!(body.contains("<systemPassword>{{secret:dpo.password}}</systemPassword>"));
        assert!(body.contains("<SendersReference>a&lt;b</SendersReference>"));
        assert!(body.contains("<PartyNumber>910076787</PartyNumber>"));
        let upload = String::from_utf8(upload(&system, "ref-1", "sbd.zip", "sbd.zip")).unwrap();
        assert!(upload.contains("<Reference xmlns=\"http://www.altinn.no/services/ServiceEngine/Broker/2015/06\">ref-1</Reference>"));
        assert!(upload.contains("href=\"cid:sbd.zip\""));
    }

    #[test]
    fn available_files_are_read_from_the_listing() {
        let answer = "<GetAvailableFilesBasicResult>\
            <BrokerServiceAvailableFile xmlns=\"d\"><FileReference>r1</FileReference>\
            <SendersReference>s1</SendersReference></BrokerServiceAvailableFile>\
            <BrokerServiceAvailableFile xmlns=\"d\"><FileReference>r2</FileReference>\
            <SendersReference/></BrokerServiceAvailableFile></GetAvailableFilesBasicResult>";
        assert_eq!(
            parse_available(answer),
            vec![
                AvailableFile {
                    reference: "r1".into(),
                    senders_reference: "s1".into()
                },
                AvailableFile {
                    reference: "r2".into(),
                    senders_reference: String::new()
                },
            ]
        );
    }
}
