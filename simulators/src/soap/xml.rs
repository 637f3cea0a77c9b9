//! A small namespace-aware XML element tree, read with quick-xml, for SOAP messages.
//!
//! SOAP lookups must name the namespace as well as the element, so every element keeps its
//! expanded name. The tree is only built from messages already held to a size limit, which
//! keeps the reader simple: no DTDs, no entities beyond XML's own, a bounded depth.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::XSI;

/// How deep an element tree may nest; SOAP messages here are a dozen levels at most.
const MAX_DEPTH: usize = 64;

/// An XML element: its expanded name, attributes, child elements and text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// The namespace URI, empty when unbound.
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Attributes as (namespace, local name, value); namespace declarations left out.
    pub attributes: Vec<(String, String, String)>,
    /// Child elements, in document order.
    pub children: Vec<Element>,
    /// The text directly inside the element, entities resolved.
    pub text: String,
}

impl Element {
    /// Whether this is `{ns}name`.
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub(crate) fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub(crate) fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The attribute `{ns}name`.
    pub(crate) fn attribute(&self, ns: &str, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, l, _)| n == ns && l == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the element carries `xsi:nil="true"`.
    pub(crate) fn is_nil(&self) -> bool {
        self.attribute(XSI, "nil")
            .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    }

    /// The trimmed text of child `{ns}name`, if present, not nil and not empty.
    pub(crate) fn text_of(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name)
            .filter(|c| !c.is_nil())
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The trimmed text of child `{ns}name`, or a description of what is missing.
    pub(crate) fn required(&self, ns: &str, name: &str) -> Result<&str, String> {
        self.text_of(ns, name)
            .ok_or_else(|| format!("{} is missing {name}", self.name))
    }
}

/// Parses `xml` into its root element; the error says what is wrong with it.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => ns.0.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(format!("the namespace prefix {prefix:?} is not declared"));
            }
        };
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                return Err(format!(
                    "content after the root element: <{}>",
                    start.local_name().as_ref()
                ));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                if stack.len() == MAX_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_DEPTH}"));
                }
                let mut element = Element {
                    ns,
                    name: start.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| format!("a bad attribute: {e}"))?;
                    let key = attribute.key;
                    if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                        continue;
                    }
                    let (resolved, local) = reader.resolver().resolve_attribute(key);
                    let attribute_ns = match resolved {
                        ResolveResult::Bound(ns) => ns.0.to_owned(),
                        ResolveResult::Unbound => String::new(),
                        ResolveResult::Unknown(prefix) => {
                            return Err(format!("the namespace prefix {prefix:?} is not declared"));
                        }
                    };
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("a bad attribute value: {e}"))?;
                    element.attributes.push((
                        attribute_ns,
                        local.as_ref().to_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without a start tag")?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(data) => {
                let content = data.xml10_content();
                stack
                    .last_mut()
                    .ok_or("CDATA outside the root element")?
                    .text
                    .push_str(&content);
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                } else {
                    quick_xml::escape::resolve_predefined_entity(&reference).map(str::to_owned)
                };
                let resolved =
                    resolved.ok_or_else(|| format!("an unknown entity &{};", &*reference))?;
                stack
                    .last_mut()
                    .ok_or("an entity outside the root element")?
                    .text
                    .push_str(&resolved);
            }
            Event::DocType(_) => return Err("a DTD is not allowed in a SOAP message".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_resolve_namespaces_and_entities() {
        let root = parse(
            "<?xml version=\"1.0\"?><a:Root xmlns:a=\"urn:a\" xmlns=\"urn:d\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <Child a:attr=\"x&amp;y\">1 &lt; 2 &#x41;<![CDATA[<raw>]]></Child><Nil i:nil=\"true\"/></a:Root>",
        )
        .unwrap();
        assert!(root.is("urn:a", "Root"));
        let child = root.child("urn:d", "Child").unwrap();
        assert_eq!(child.text, "1 < 2 A<raw>");
        assert_eq!(child.attribute("urn:a", "attr"), Some("x&y"));
        assert!(root.child("urn:d", "Nil").unwrap().is_nil());
        assert_eq!(root.text_of("urn:d", "Nil"), None);
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "<a/><b/>",
            "<p:a/>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a>&unknown;</a>",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
