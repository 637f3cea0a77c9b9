//! The WSDL of the correspondence agency, served on `GET …svc?wsdl` as Altinn serves its own.
//!
//! It describes exactly what the simulator implements: `Test`, `InsertCorrespondenceV2` and
//! `GetCorrespondenceStatusHistory` on a SOAP 1.2 binding, with Altinn's namespaces, element
//! order and actions, the fields the simulator reads, and this simulator as the address. The
//! security policy (a `UsernameToken` over the transport) is stated as Altinn states it.

use super::insert::{ATTACHMENT_NS, NOTIFICATION_NS, V2_NS};
use super::security::WSU;
use super::{ACTIONS, ARRAYS_NS, CORRESPONDENCE_NS, RECEIPT_NS, STATUS_INFORMATION_NS, STATUS_NS};
use crate::soap::{ALTINN_FAULT, ALTINN_SERVICES, TEST_ACTION, escape};

/// One operation's messages, port type entry and binding entry.
struct Operation {
    name: &'static str,
    input: &'static str,
    output: &'static str,
    action: String,
}

fn operations() -> [Operation; 3] {
    [
        Operation {
            name: "Test",
            input: "base:Test",
            output: "base:TestResponse",
            action: TEST_ACTION.to_owned(),
        },
        Operation {
            name: "InsertCorrespondenceV2",
            input: "tns:InsertCorrespondenceV2",
            output: "tns:InsertCorrespondenceV2Response",
            action: format!("{ACTIONS}InsertCorrespondenceV2"),
        },
        Operation {
            name: "GetCorrespondenceStatusHistory",
            input: "tns:CorrespondenceStatusHistoryRequest",
            output: "tns:CorrespondenceStatusHistoryResult",
            action: format!("{ACTIONS}GetCorrespondenceStatusHistory"),
        },
    ]
}

/// The WSDL, with `address` as the service's location.
pub(super) fn wsdl(address: &str) -> String {
    let interface = "ICorrespondenceAgencyExternal";
    let address = escape(address);
    let mut messages = String::new();
    let mut port_type = String::new();
    let mut binding = String::new();
    for Operation {
        name,
        input,
        output,
        action,
    } in operations()
    {
        messages.push_str(&format!(
            r#"
  <wsdl:message name="{interface}_{name}_InputMessage"><wsdl:part name="parameters" element="{input}"/></wsdl:message>
  <wsdl:message name="{interface}_{name}_OutputMessage"><wsdl:part name="parameters" element="{output}"/></wsdl:message>
  <wsdl:message name="{interface}_{name}_AltinnFaultFault_FaultMessage"><wsdl:part name="detail" element="fault:AltinnFault"/></wsdl:message>"#
        ));
        port_type.push_str(&format!(
            r#"
    <wsdl:operation name="{name}">
      <wsdl:input wsaw:Action="{action}" message="tns:{interface}_{name}_InputMessage"/>
      <wsdl:output wsaw:Action="{action}Response" message="tns:{interface}_{name}_OutputMessage"/>
      <wsdl:fault wsaw:Action="{action}AltinnFaultFault" name="AltinnFaultFault" message="tns:{interface}_{name}_AltinnFaultFault_FaultMessage"/>
    </wsdl:operation>"#
        ));
        binding.push_str(&format!(
            r#"
    <wsdl:operation name="{name}">
      <soap12:operation soapAction="{action}" style="document"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input>
      <wsdl:output><soap12:body use="literal"/></wsdl:output>
      <wsdl:fault name="AltinnFaultFault"><soap12:fault use="literal" name="AltinnFaultFault" namespace=""/></wsdl:fault>
    </wsdl:operation>"#
        ));
    }
    format!(
        r##"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="CorrespondenceAgencyExternalSF" targetNamespace="{CORRESPONDENCE_NS}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl"
    xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:wsu="{WSU}"
    xmlns:sp="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"
    xmlns:tns="{CORRESPONDENCE_NS}" xmlns:base="{ALTINN_SERVICES}" xmlns:fault="{ALTINN_FAULT}">
  <wsp:Policy wsu:Id="CustomBinding_{interface}_policy">
    <wsp:ExactlyOne><wsp:All>
      <sp:TransportBinding><wsp:Policy>
        <sp:TransportToken><wsp:Policy><sp:HttpToken/></wsp:Policy></sp:TransportToken>
        <sp:AlgorithmSuite><wsp:Policy><sp:Basic256/></wsp:Policy></sp:AlgorithmSuite>
        <sp:Layout><wsp:Policy><sp:Strict/></wsp:Policy></sp:Layout>
      </wsp:Policy></sp:TransportBinding>
      <sp:SignedSupportingTokens><wsp:Policy>
        <sp:UsernameToken sp:IncludeToken="http://schemas.xmlsoap.org/ws/2005/07/securitypolicy/IncludeToken/AlwaysToRecipient">
          <wsp:Policy><sp:WssUsernameToken10/></wsp:Policy>
        </sp:UsernameToken>
      </wsp:Policy></sp:SignedSupportingTokens>
      <wsaw:UsingAddressing/>
    </wsp:All></wsp:ExactlyOne>
  </wsp:Policy>
  <wsdl:types>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ALTINN_SERVICES}">
      <xs:element name="Test"><xs:complexType><xs:sequence/></xs:complexType></xs:element>
      <xs:element name="TestResponse"><xs:complexType><xs:sequence/></xs:complexType></xs:element>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ALTINN_FAULT}">
      <xs:complexType name="AltinnFault"><xs:sequence>
        <xs:element minOccurs="0" name="AltinnErrorMessage" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="AltinnExtendedErrorMessage" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="AltinnLocalizedErrorMessage" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ErrorGuid" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ErrorID" type="xs:int"/>
        <xs:element minOccurs="0" name="UserGuid" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="UserId" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:element name="AltinnFault" nillable="true" type="fault:AltinnFault"/>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{CORRESPONDENCE_NS}"
        xmlns:v2="{V2_NS}" xmlns:receipt="{RECEIPT_NS}" xmlns:arrays="{ARRAYS_NS}" xmlns:info="{STATUS_INFORMATION_NS}">
      <xs:import namespace="{V2_NS}"/>
      <xs:import namespace="{RECEIPT_NS}"/>
      <xs:import namespace="{ARRAYS_NS}"/>
      <xs:import namespace="{STATUS_INFORMATION_NS}"/>
      <xs:element name="InsertCorrespondenceV2"><xs:complexType><xs:sequence>
        <xs:element minOccurs="1" name="SystemUserCode" type="xs:string"/>
        <xs:element minOccurs="1" name="ExternalShipmentReference" type="xs:string"/>
        <xs:element minOccurs="1" name="Correspondence" type="v2:InsertCorrespondenceV2"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="InsertCorrespondenceV2Response"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="InsertCorrespondenceV2Result" nillable="true" type="receipt:ReceiptExternal"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="CorrespondenceStatusHistoryRequest"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="CorrespondenceSendersReferences" nillable="true" type="arrays:ArrayOfstring"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="CorrespondenceStatusHistoryResult"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="CorrespondenceStatusInformation" nillable="true" type="info:CorrespondenceStatusInformation"/>
        <xs:element minOccurs="0" name="SdpStatusInformation" nillable="true" type="xs:anyType"/>
      </xs:sequence></xs:complexType></xs:element>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ARRAYS_NS}">
      <xs:complexType name="ArrayOfstring"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="string" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{V2_NS}"
        xmlns:v2="{V2_NS}" xmlns:att="{ATTACHMENT_NS}" xmlns:notification="{NOTIFICATION_NS}">
      <xs:import namespace="{ATTACHMENT_NS}"/>
      <xs:import namespace="{NOTIFICATION_NS}"/>
      <xs:complexType name="InsertCorrespondenceV2"><xs:sequence>
        <xs:element minOccurs="0" name="ServiceCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ServiceEdition" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="Reportee" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="Content" nillable="true" type="v2:ExternalContentV2"/>
        <xs:element minOccurs="0" name="VisibleDateTime" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="AllowSystemDeleteDateTime" nillable="true" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="DueDateTime" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="Notifications" nillable="true" type="notification:NotificationBEList"/>
        <xs:element minOccurs="0" name="AllowForwarding" nillable="true" type="xs:boolean"/>
        <xs:element minOccurs="0" name="MessageSender" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ExternalContentV2"><xs:sequence>
        <xs:element minOccurs="0" name="LanguageCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="MessageTitle" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="MessageSummary" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="MessageBody" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="Attachments" nillable="true" type="v2:AttachmentsV2"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="AttachmentsV2"><xs:sequence>
        <xs:element minOccurs="0" name="BinaryAttachments" nillable="true" type="att:BinaryAttachmentExternalBEV2List"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ATTACHMENT_NS}" xmlns:att="{ATTACHMENT_NS}">
      <xs:complexType name="BinaryAttachmentExternalBEV2List"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="BinaryAttachmentV2" nillable="true" type="att:BinaryAttachmentV2"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="BinaryAttachmentV2"><xs:sequence>
        <xs:element minOccurs="0" name="FunctionType" type="att:AttachmentFunctionType"/>
        <xs:element minOccurs="0" name="FileName" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="Name" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="Encrypted" type="xs:boolean"/>
        <xs:element minOccurs="0" name="Data" nillable="true" type="xs:base64Binary"/>
        <xs:element minOccurs="0" name="SendersReference" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:simpleType name="AttachmentFunctionType"><xs:restriction base="xs:string">
        <xs:enumeration value="Unspecified"/><xs:enumeration value="Invoice"/>
      </xs:restriction></xs:simpleType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{NOTIFICATION_NS}" xmlns:notification="{NOTIFICATION_NS}">
      <xs:complexType name="NotificationBEList"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="Notification" nillable="true" type="notification:Notification"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Notification"><xs:sequence>
        <xs:element minOccurs="0" name="FromAddress" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ShipmentDateTime" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="LanguageCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="NotificationType" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="TextTokens" nillable="true" type="notification:TextTokenSubstitutionBEList"/>
        <xs:element minOccurs="0" name="ReceiverEndPoints" nillable="true" type="notification:ReceiverEndPointBEList"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="TextTokenSubstitutionBEList"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="TextToken" nillable="true" type="notification:TextToken"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="TextToken"><xs:sequence>
        <xs:element minOccurs="0" name="TokenNum" type="xs:int"/>
        <xs:element minOccurs="0" name="TokenValue" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ReceiverEndPointBEList"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="ReceiverEndPoint" nillable="true" type="notification:ReceiverEndPoint"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ReceiverEndPoint"><xs:sequence>
        <xs:element minOccurs="0" name="TransportType" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiverAddress" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{RECEIPT_NS}" xmlns:receipt="{RECEIPT_NS}">
      <xs:complexType name="ReceiptExternal"><xs:sequence>
        <xs:element minOccurs="0" name="LastChanged" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="ParentReceiptId" type="xs:int"/>
        <xs:element minOccurs="0" name="ReceiptHistory" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptId" type="xs:int"/>
        <xs:element minOccurs="0" name="ReceiptStatusCode" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptText" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptTypeName" type="xs:string"/>
        <xs:element minOccurs="0" name="References" nillable="true" type="receipt:ReferenceList"/>
        <xs:element minOccurs="0" name="SubReceipts" nillable="true" type="xs:anyType"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ReferenceList"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="Reference" nillable="true" type="receipt:Reference"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Reference"><xs:sequence>
        <xs:element minOccurs="0" name="ReferenceTypeName" type="xs:string"/>
        <xs:element minOccurs="0" name="ReferenceValue" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{STATUS_INFORMATION_NS}" xmlns:status="{STATUS_NS}">
      <xs:import namespace="{STATUS_NS}"/>
      <xs:complexType name="CorrespondenceStatusInformation"><xs:sequence>
        <xs:element minOccurs="0" name="CorrespondenceStatusDetailsList" nillable="true" type="status:ArrayOfStatusV2"/>
        <xs:element minOccurs="0" name="LimitReached" type="xs:boolean"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{STATUS_NS}" xmlns:status="{STATUS_NS}">
      <xs:complexType name="ArrayOfStatusV2"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="StatusV2" nillable="true" type="status:StatusV2"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="StatusV2"><xs:sequence>
        <xs:element minOccurs="0" name="CorrespondenceID" type="xs:int"/>
        <xs:element minOccurs="0" name="CreatedDate" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="Notifications" nillable="true" type="xs:anyType"/>
        <xs:element minOccurs="0" name="Reportee" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="SendersReference" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="StatusChanges" nillable="true" type="status:ArrayOfStatusChangeV2"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ArrayOfStatusChangeV2"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="StatusChangeV2" nillable="true" type="status:StatusChangeV2"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="StatusChangeV2"><xs:sequence>
        <xs:element minOccurs="0" name="StatusDate" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="StatusType" type="xs:string"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
  </wsdl:types>{messages}
  <wsdl:portType name="{interface}">{port_type}
  </wsdl:portType>
  <wsdl:binding name="CustomBinding_{interface}" type="tns:{interface}">
    <wsp:PolicyReference URI="#CustomBinding_{interface}_policy"/>
    <soap12:binding transport="http://schemas.xmlsoap.org/soap/http"/>{binding}
  </wsdl:binding>
  <wsdl:service name="CorrespondenceAgencyExternalSF">
    <wsdl:port name="CustomBinding_{interface}" binding="tns:CustomBinding_{interface}">
      <soap12:address location="{address}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"##
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_wsdl_is_well_formed_and_names_its_address() {
        let wsdl = super::wsdl("http://127.0.0.1:1/x.svc");
        crate::soap::parse(&wsdl).unwrap();
        assert!(wsdl.contains("location=\"http://127.0.0.1:1/x.svc\""));
    }
}
