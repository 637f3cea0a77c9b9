//! The two WSDLs of the broker service, served on `GET …svc?wsdl`.
//!
//! JAX-WS clients (the v2/v3 integration point among them) download the WSDL when they are
//! created, so the simulator must serve one. These describe exactly the operations the
//! simulator implements, with Altinn's namespaces, element names, SOAP actions and bindings
//! (`BasicHttpBinding`, SOAP 1.1; the streamed one with MTOM), and the address of this
//! simulator as the endpoint.

use super::{ARRAYS_NS, BROKER_DATA_NS, BROKER_NS, BROKER_POLL_NS, SERVICE_ENTITY_NS};
use crate::soap::{ALTINN_FAULT, ALTINN_SERVICES, TEST_ACTION, escape};

/// The shared head of both WSDLs: namespaces and the `Test` and `AltinnFault` schemas.
fn head(service: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="{service}" targetNamespace="{BROKER_NS}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl"
    xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"
    xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    xmlns:tns="{BROKER_NS}" xmlns:base="{ALTINN_SERVICES}" xmlns:fault="{ALTINN_FAULT}">
  <wsdl:types>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ALTINN_SERVICES}">
      <xs:element name="Test"><xs:complexType><xs:sequence/></xs:complexType></xs:element>
      <xs:element name="TestResponse"><xs:complexType><xs:sequence/></xs:complexType></xs:element>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ALTINN_FAULT}">
      <xs:complexType name="AltinnFault">
        <xs:sequence>
          <xs:element minOccurs="0" name="AltinnErrorMessage" nillable="true" type="xs:string"/>
          <xs:element minOccurs="0" name="AltinnExtendedErrorMessage" nillable="true" type="xs:string"/>
          <xs:element minOccurs="0" name="AltinnLocalizedErrorMessage" nillable="true" type="xs:string"/>
          <xs:element minOccurs="0" name="ErrorGuid" nillable="true" type="xs:string"/>
          <xs:element minOccurs="0" name="ErrorID" type="xs:int"/>
          <xs:element minOccurs="0" name="UserGuid" nillable="true" type="xs:string"/>
          <xs:element minOccurs="0" name="UserId" nillable="true" type="xs:string"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="AltinnFault" nillable="true" type="fault:AltinnFault"/>
    </xs:schema>"#
    )
}

/// A `wsdl:operation` of a port type, with its input, output and fault messages.
fn port_operation(interface: &str, name: &str, action_base: &str) -> String {
    let (input, output) = if name == "Test" {
        (TEST_ACTION.to_owned(), format!("{TEST_ACTION}Response"))
    } else {
        (
            format!("{action_base}/{name}"),
            format!("{action_base}/{name}Response"),
        )
    };
    format!(
        r#"
    <wsdl:operation name="{name}">
      <wsdl:input wsaw:Action="{input}" message="tns:{interface}_{name}_InputMessage"/>
      <wsdl:output wsaw:Action="{output}" message="tns:{interface}_{name}_OutputMessage"/>
      <wsdl:fault wsaw:Action="{input}AltinnFaultFault" name="AltinnFaultFault" message="tns:{interface}_{name}_AltinnFaultFault_FaultMessage"/>
    </wsdl:operation>"#
    )
}

/// The three messages of an operation whose input and output are single elements.
fn messages(interface: &str, name: &str, input: &str, output: &str) -> String {
    format!(
        r#"
  <wsdl:message name="{interface}_{name}_InputMessage"><wsdl:part name="parameters" element="{input}"/></wsdl:message>
  <wsdl:message name="{interface}_{name}_OutputMessage"><wsdl:part name="parameters" element="{output}"/></wsdl:message>
  <wsdl:message name="{interface}_{name}_AltinnFaultFault_FaultMessage"><wsdl:part name="detail" element="fault:AltinnFault"/></wsdl:message>"#
    )
}

/// A `wsdl:operation` of a binding; `headers` are the `soap:header` lines of its input.
fn binding_operation(name: &str, action: &str, headers: &str) -> String {
    format!(
        r#"
    <wsdl:operation name="{name}">
      <soap:operation soapAction="{action}" style="document"/>
      <wsdl:input>{headers}<soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="AltinnFaultFault"><soap:fault use="literal" name="AltinnFaultFault" namespace=""/></wsdl:fault>
    </wsdl:operation>"#
    )
}

/// The WSDL of `BrokerServiceExternalBasic.svc`, served at `address`.
pub(super) fn basic(address: &str) -> String {
    let interface = "IBrokerServiceExternalBasic";
    let actions = format!("{BROKER_NS}/{interface}");
    let credentials = r#"<xs:element minOccurs="1" name="systemUserName" type="xs:string"/>
            <xs:element minOccurs="1" name="systemPassword" type="xs:string"/>"#;
    let mut wsdl = head("BrokerServiceExternalBasicSF");
    wsdl.push_str(&format!(
        r#"
    <xs:schema elementFormDefault="qualified" targetNamespace="{BROKER_NS}" xmlns:data="{BROKER_DATA_NS}" xmlns:poll="{BROKER_POLL_NS}">
      <xs:import namespace="{BROKER_DATA_NS}"/>
      <xs:import namespace="{BROKER_POLL_NS}"/>
      <xs:element name="InitiateBrokerServiceBasic"><xs:complexType><xs:sequence>
            {credentials}
            <xs:element minOccurs="1" name="brokerServiceInitiation" type="data:BrokerServiceInitiation"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="InitiateBrokerServiceBasicResponse"><xs:complexType><xs:sequence>
            <xs:element minOccurs="0" name="InitiateBrokerServiceBasicResult" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="GetAvailableFilesBasic"><xs:complexType><xs:sequence>
            {credentials}
            <xs:element minOccurs="1" name="searchParameters" type="data:BrokerServiceSearch"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="GetAvailableFilesBasicResponse"><xs:complexType><xs:sequence>
            <xs:element minOccurs="0" name="GetAvailableFilesBasicResult" nillable="true" type="data:BrokerServiceAvailableFileList"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="CheckIfAvailableFilesBasic"><xs:complexType><xs:sequence>
            {credentials}
            <xs:element minOccurs="1" name="pollParameters" type="poll:BrokerServicePoll"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="CheckIfAvailableFilesBasicResponse"><xs:complexType><xs:sequence>
            <xs:element minOccurs="0" name="CheckIfAvailableFilesBasicResult" type="xs:boolean"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="ConfirmDownloadedBasic"><xs:complexType><xs:sequence>
            {credentials}
            <xs:element minOccurs="1" name="fileReference" type="xs:string"/>
            <xs:element minOccurs="1" name="reportee" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="ConfirmDownloadedBasicResponse"><xs:complexType><xs:sequence/></xs:complexType></xs:element>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{BROKER_DATA_NS}" xmlns:data="{BROKER_DATA_NS}" xmlns:entity="{SERVICE_ENTITY_NS}">
      <xs:import namespace="{SERVICE_ENTITY_NS}"/>
      <xs:complexType name="BrokerServiceInitiation"><xs:sequence>
        <xs:element name="Manifest" nillable="true" type="data:Manifest"/>
        <xs:element name="RecipientList" nillable="true" type="data:ArrayOfRecipient"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Manifest"><xs:sequence>
        <xs:element name="ExternalServiceCode" nillable="true" type="xs:string"/>
        <xs:element name="ExternalServiceEditionCode" type="xs:int"/>
        <xs:element minOccurs="0" name="FileList" nillable="true" type="data:ArrayOfFile"/>
        <xs:element minOccurs="0" name="PropertyList" nillable="true" type="data:ArrayOfProperty"/>
        <xs:element name="Reportee" nillable="true" type="xs:string"/>
        <xs:element name="SendersReference" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ArrayOfFile"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="File" nillable="true" type="data:File"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="File"><xs:sequence>
        <xs:element minOccurs="0" name="CheckSum" nillable="true" type="xs:string"/>
        <xs:element name="FileName" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ArrayOfProperty"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="Property" nillable="true" type="data:Property"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Property"><xs:sequence>
        <xs:element name="PropertyKey" nillable="true" type="xs:string"/>
        <xs:element name="PropertyValue" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="ArrayOfRecipient"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="Recipient" nillable="true" type="data:Recipient"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Recipient"><xs:sequence>
        <xs:element name="PartyNumber" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="BrokerServiceSearch"><xs:sequence>
        <xs:element minOccurs="0" name="ExternalServiceCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ExternalServiceEditionCode" type="xs:int"/>
        <xs:element name="FileStatus" type="entity:BrokerServiceAvailableFileStatus"/>
        <xs:element minOccurs="0" name="MaxSentDateTime" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="MinSentDateTime" type="xs:dateTime"/>
        <xs:element name="Reportee" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="BrokerServiceAvailableFileList"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="BrokerServiceAvailableFile" nillable="true" type="data:BrokerServiceAvailableFile"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="BrokerServiceAvailableFile"><xs:sequence>
        <xs:element minOccurs="0" name="ExternalServiceCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ExternalServiceEditionCode" type="xs:int"/>
        <xs:element minOccurs="0" name="FileName" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="FileReference" type="xs:string"/>
        <xs:element minOccurs="0" name="FileSize" type="xs:long"/>
        <xs:element minOccurs="0" name="FileStatus" type="entity:BrokerServiceAvailableFileStatus"/>
        <xs:element minOccurs="0" name="IsSftpDownloadOnly" type="xs:boolean"/>
        <xs:element minOccurs="0" name="ReceiptID" type="xs:int"/>
        <xs:element minOccurs="0" name="Reportee" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="SendersReference" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="SentDate" type="xs:dateTime"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{BROKER_POLL_NS}" xmlns:arrays="{ARRAYS_NS}">
      <xs:import namespace="{ARRAYS_NS}"/>
      <xs:complexType name="BrokerServicePoll"><xs:sequence>
        <xs:element minOccurs="0" name="ExternalServiceCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ExternalServiceEditionCode" type="xs:int"/>
        <xs:element name="Recipients" nillable="true" type="arrays:ArrayOfstring"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ARRAYS_NS}">
      <xs:complexType name="ArrayOfstring"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="string" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{SERVICE_ENTITY_NS}">
      <xs:simpleType name="BrokerServiceAvailableFileStatus">
        <xs:restriction base="xs:string">
          <xs:enumeration value="Uploaded"/>
          <xs:enumeration value="Downloaded"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:schema>
  </wsdl:types>"#
    ));
    wsdl.push_str(&messages(
        interface,
        "Test",
        "base:Test",
        "base:TestResponse",
    ));
    for name in [
        "InitiateBrokerServiceBasic",
        "GetAvailableFilesBasic",
        "CheckIfAvailableFilesBasic",
        "ConfirmDownloadedBasic",
    ] {
        wsdl.push_str(&messages(
            interface,
            name,
            &format!("tns:{name}"),
            &format!("tns:{name}Response"),
        ));
    }
    wsdl.push_str(&format!("\n  <wsdl:portType name=\"{interface}\">"));
    for name in [
        "Test",
        "InitiateBrokerServiceBasic",
        "GetAvailableFilesBasic",
        "CheckIfAvailableFilesBasic",
        "ConfirmDownloadedBasic",
    ] {
        wsdl.push_str(&port_operation(interface, name, &actions));
    }
    wsdl.push_str(&format!(
        "\n  </wsdl:portType>\n  <wsdl:binding name=\"BasicHttpBinding_{interface}\" type=\"tns:{interface}\">\n    <soap:binding transport=\"http://schemas.xmlsoap.org/soap/http\"/>"
    ));
    wsdl.push_str(&binding_operation("Test", TEST_ACTION, ""));
    for name in [
        "InitiateBrokerServiceBasic",
        "GetAvailableFilesBasic",
        "CheckIfAvailableFilesBasic",
        "ConfirmDownloadedBasic",
    ] {
        wsdl.push_str(&binding_operation(name, &format!("{actions}/{name}"), ""));
    }
    wsdl.push_str(&service_and_end(
        "BrokerServiceExternalBasicSF",
        interface,
        address,
        "",
    ));
    wsdl
}

/// The WSDL of `BrokerServiceExternalBasicStreamed.svc` (MTOM), served at `address`.
pub(super) fn streamed(address: &str) -> String {
    let interface = "IBrokerServiceExternalBasicStreamed";
    let actions = format!("{BROKER_NS}/{interface}");
    let mut wsdl = head("BrokerServiceExternalBasicStreamedSF");
    wsdl.push_str(&format!(
        r#"
    <xs:schema elementFormDefault="qualified" targetNamespace="{BROKER_NS}" xmlns:msg="http://schemas.microsoft.com/Message">
      <xs:import namespace="http://schemas.microsoft.com/Message"/>
      <xs:element name="StreamedPayloadBasicBE"><xs:complexType><xs:sequence>
        <xs:element name="DataStream" type="msg:StreamBody"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="FileName" nillable="true" type="xs:string"/>
      <xs:element name="Reference" nillable="true" type="xs:string"/>
      <xs:element name="Reportee" nillable="true" type="xs:string"/>
      <xs:element name="SystemPassword" nillable="true" type="xs:string"/>
      <xs:element name="SystemUserName" nillable="true" type="xs:string"/>
      <xs:element name="ReceiptExternalStreamedBE"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="LastChanged" type="xs:dateTime"/>
        <xs:element minOccurs="0" name="ParentReceiptId" type="xs:int"/>
        <xs:element minOccurs="0" name="ReceiptHistory" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptId" type="xs:int"/>
        <xs:element minOccurs="0" name="ReceiptStatusCode" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptText" nillable="true" type="xs:string"/>
        <xs:element minOccurs="0" name="ReceiptTypeName" nillable="true" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="DownloadFileStreamedBasic"><xs:complexType><xs:sequence>
        <xs:element minOccurs="1" name="systemUserName" type="xs:string"/>
        <xs:element minOccurs="1" name="systemPassword" type="xs:string"/>
        <xs:element minOccurs="1" name="fileReference" type="xs:string"/>
        <xs:element minOccurs="1" name="reportee" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="DownloadFileStreamedBasicResponse"><xs:complexType><xs:sequence>
        <xs:element name="DownloadFileStreamedBasicResult" type="msg:StreamBody"/>
      </xs:sequence></xs:complexType></xs:element>
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="http://schemas.microsoft.com/Message">
      <xs:simpleType name="StreamBody"><xs:restriction base="xs:base64Binary"/></xs:simpleType>
    </xs:schema>
  </wsdl:types>"#
    ));
    wsdl.push_str(&messages(
        interface,
        "Test",
        "base:Test",
        "base:TestResponse",
    ));
    wsdl.push_str(&messages(
        interface,
        "DownloadFileStreamedBasic",
        "tns:DownloadFileStreamedBasic",
        "tns:DownloadFileStreamedBasicResponse",
    ));
    wsdl.push_str(&format!(
        r#"
  <wsdl:message name="StreamedPayloadBasicBE"><wsdl:part name="parameters" element="tns:StreamedPayloadBasicBE"/></wsdl:message>
  <wsdl:message name="StreamedPayloadBasicBE_Headers">
    <wsdl:part name="FileName" element="tns:FileName"/>
    <wsdl:part name="Reference" element="tns:Reference"/>
    <wsdl:part name="Reportee" element="tns:Reportee"/>
    <wsdl:part name="SystemPassword" element="tns:SystemPassword"/>
    <wsdl:part name="SystemUserName" element="tns:SystemUserName"/>
  </wsdl:message>
  <wsdl:message name="ReceiptExternalStreamedBE"><wsdl:part name="parameters" element="tns:ReceiptExternalStreamedBE"/></wsdl:message>
  <wsdl:message name="{interface}_UploadFileStreamedBasic_AltinnFaultFault_FaultMessage"><wsdl:part name="detail" element="fault:AltinnFault"/></wsdl:message>
  <wsdl:portType name="{interface}">"#
    ));
    wsdl.push_str(&port_operation(interface, "Test", &actions));
    wsdl.push_str(&format!(
        r#"
    <wsdl:operation name="UploadFileStreamedBasic">
      <wsdl:input name="StreamedPayloadBasicBE" wsaw:Action="{actions}/UploadFileStreamedBasic" message="tns:StreamedPayloadBasicBE"/>
      <wsdl:output name="ReceiptExternalStreamedBE" wsaw:Action="{actions}/UploadFileStreamedBasicResponse" message="tns:ReceiptExternalStreamedBE"/>
      <wsdl:fault wsaw:Action="{actions}/UploadFileStreamedBasicAltinnFaultFault" name="AltinnFaultFault" message="tns:{interface}_UploadFileStreamedBasic_AltinnFaultFault_FaultMessage"/>
    </wsdl:operation>"#
    ));
    wsdl.push_str(&port_operation(
        interface,
        "DownloadFileStreamedBasic",
        &actions,
    ));
    wsdl.push_str(&format!(
        r##"
  </wsdl:portType>
  <wsdl:binding name="BasicHttpBinding_{interface}" type="tns:{interface}">
    <wsp:PolicyReference URI="#BasicHttpBinding_{interface}_policy"/>
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>"##
    ));
    wsdl.push_str(&binding_operation("Test", TEST_ACTION, ""));
    let headers: String = [
        "FileName",
        "Reference",
        "Reportee",
        "SystemPassword",
        "SystemUserName",
    ]
    .iter()
    .map(|part| {
        format!(
            "<soap:header message=\"tns:StreamedPayloadBasicBE_Headers\" part=\"{part}\" use=\"literal\"/>"
        )
    })
    .collect();
    wsdl.push_str(&binding_operation(
        "UploadFileStreamedBasic",
        &format!("{actions}/UploadFileStreamedBasic"),
        &headers,
    ));
    wsdl.push_str(&binding_operation(
        "DownloadFileStreamedBasic",
        &format!("{actions}/DownloadFileStreamedBasic"),
        "",
    ));
    let policy = format!(
        r#"
  <wsp:Policy wsu:Id="BasicHttpBinding_{interface}_policy">
    <wsp:ExactlyOne><wsp:All>
      <wsoma:OptimizedMimeSerialization xmlns:wsoma="http://schemas.xmlsoap.org/ws/2004/09/policy/optimizedmimeserialization"/>
    </wsp:All></wsp:ExactlyOne>
  </wsp:Policy>"#
    );
    wsdl.push_str(&service_and_end(
        "BrokerServiceExternalBasicStreamedSF",
        interface,
        address,
        &policy,
    ));
    wsdl
}

fn service_and_end(service: &str, interface: &str, address: &str, policy: &str) -> String {
    let address = escape(address);
    format!(
        r#"
  </wsdl:binding>
  <wsdl:service name="{service}">
    <wsdl:port name="BasicHttpBinding_{interface}" binding="tns:BasicHttpBinding_{interface}">
      <soap:address location="{address}"/>
    </wsdl:port>
  </wsdl:service>{policy}
</wsdl:definitions>
"#
    )
}
