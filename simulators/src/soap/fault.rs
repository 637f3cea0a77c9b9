//! SOAP faults as Altinn's WCF services give them: HTTP 500, `Client`/`Sender` or
//! `Server`/`Receiver` codes, WCF's and WS-Addressing's subcodes, and an `AltinnFault` detail
//! when Altinn's own checks refuse a request.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{ALTINN_FAULT, SoapVersion, WCF_ADDRESSING_NONE, WSA, XSI, envelope, escape, respond};

/// The `ErrorID` Altinn gives a wrong system user name or password.
pub(crate) const WRONG_CREDENTIALS_ERROR: i32 = 989;
/// Altinn's message for a wrong system user name or password.
pub(crate) const WRONG_CREDENTIALS: &str = "Incorrect username/password/pin given for user";

/// Who is at fault, as SOAP 1.1 (`Client`/`Server`) and 1.2 (`Sender`/`Receiver`) say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultCode {
    /// The request is wrong.
    Sender,
    /// The service failed.
    Receiver,
}

/// A SOAP fault, answered with HTTP 500 as WCF does.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// The SOAP version to answer in.
    pub version: SoapVersion,
    /// Who is at fault.
    pub code: FaultCode,
    /// A more specific code, `(namespace, local name)`, as WCF gives for addressing and
    /// security failures (as the 1.1 `faultcode` it replaces the generic one).
    pub subcode: Option<(&'static str, &'static str)>,
    /// The human-readable reason.
    pub reason: String,
    /// The Altinn error id when the fault carries an `AltinnFault` detail.
    pub altinn_error: Option<i32>,
    /// The WS-Addressing action of the fault message (SOAP 1.2 with addressing only).
    pub action: Option<String>,
}

impl Fault {
    /// A fault for a malformed or incomplete request, without Altinn detail.
    pub(crate) fn client(version: SoapVersion, reason: impl Into<String>) -> Self {
        Self {
            version,
            code: FaultCode::Sender,
            subcode: None,
            reason: reason.into(),
            altinn_error: None,
            action: None,
        }
    }

    /// A fault Altinn raises from its own checks, with an `AltinnFault` detail.
    pub(crate) fn altinn(version: SoapVersion, error_id: i32, message: impl Into<String>) -> Self {
        Self {
            altinn_error: Some(error_id),
            ..Self::client(version, message)
        }
    }

    /// Wrong system user name or password, as Altinn answers it.
    pub(crate) fn wrong_credentials(version: SoapVersion) -> Self {
        Self::altinn(version, WRONG_CREDENTIALS_ERROR, WRONG_CREDENTIALS)
    }

    /// A SOAP action the endpoint has no operation for, worded as WCF words it (the code is
    /// WS-Addressing's where the binding uses it, WCF's own where it does not).
    pub(crate) fn action_not_supported(version: SoapVersion, action: &str) -> Self {
        let namespace = match version {
            SoapVersion::V11 => WCF_ADDRESSING_NONE,
            SoapVersion::V12 => WSA,
        };
        Self {
            subcode: Some((namespace, "ActionNotSupported")),
            ..Self::client(
                version,
                format!(
                    "The message with Action '{action}' cannot be processed at the receiver, due \
                     to a ContractFilter mismatch at the EndpointDispatcher."
                ),
            )
        }
    }

    /// Sets the WS-Addressing action of the fault message.
    pub(crate) fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    fn detail(&self) -> String {
        let Some(error_id) = self.altinn_error else {
            return String::new();
        };
        let message = escape(&self.reason);
        format!(
            "<AltinnFault xmlns=\"{ALTINN_FAULT}\" xmlns:i=\"{XSI}\">\
             <AltinnErrorMessage>{message}</AltinnErrorMessage>\
             <AltinnExtendedErrorMessage>No information available</AltinnExtendedErrorMessage>\
             <AltinnLocalizedErrorMessage>{message}</AltinnLocalizedErrorMessage>\
             <ErrorGuid>{}</ErrorGuid><ErrorID>{error_id}</ErrorID>\
             <UserGuid>-no value-</UserGuid><UserId>0</UserId></AltinnFault>",
            uuid::Uuid::new_v4()
        )
    }

    /// The fault as an envelope.
    pub(crate) fn to_xml(&self) -> String {
        let reason = escape(&self.reason);
        let detail = self.detail();
        match self.version {
            SoapVersion::V11 => {
                let code = match (self.subcode, self.code) {
                    (Some((ns, name)), _) => {
                        format!("<faultcode xmlns:a=\"{ns}\">a:{name}</faultcode>")
                    }
                    (None, FaultCode::Sender) => "<faultcode>s:Client</faultcode>".to_owned(),
                    (None, FaultCode::Receiver) => "<faultcode>s:Server</faultcode>".to_owned(),
                };
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("<detail>{detail}</detail>")
                };
                envelope(
                    SoapVersion::V11,
                    "",
                    &format!(
                        "<s:Fault>{code}<faultstring xml:lang=\"en-US\">{reason}</faultstring>{detail}</s:Fault>"
                    ),
                )
            }
            SoapVersion::V12 => {
                let value = match self.code {
                    FaultCode::Sender => "s:Sender",
                    FaultCode::Receiver => "s:Receiver",
                };
                let subcode = self
                    .subcode
                    .map(|(ns, name)| {
                        format!(
                            "<s:Subcode><s:Value xmlns:a=\"{ns}\">a:{name}</s:Value></s:Subcode>"
                        )
                    })
                    .unwrap_or_default();
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("<s:Detail>{detail}</s:Detail>")
                };
                let header = self
                    .action
                    .as_deref()
                    .map(|action| {
                        format!(
                            "<a:Action s:mustUnderstand=\"1\" xmlns:a=\"{WSA}\">{}</a:Action>",
                            escape(action)
                        )
                    })
                    .unwrap_or_default();
                envelope(
                    SoapVersion::V12,
                    &header,
                    &format!(
                        "<s:Fault><s:Code><s:Value>{value}</s:Value>{subcode}</s:Code>\
                         <s:Reason><s:Text xml:lang=\"en-US\">{reason}</s:Text></s:Reason>{detail}</s:Fault>"
                    ),
                )
            }
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        tracing::info!(reason = %self.reason, "answering a SOAP fault");
        respond(
            self.version,
            StatusCode::INTERNAL_SERVER_ERROR,
            self.to_xml(),
        )
    }
}
