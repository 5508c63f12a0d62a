//! WS-Management ([MS-WSMV], DSP0226) as exsweep uses it: SOAP 1.2 envelopes for Enumerate
//! and Pull of WMI classes (by resource URI or WQL filter), Invoke of `StdRegProv` methods and
//! the cmd shell (Create, Command, Receive, Signal, Delete); and the answers parsed into items,
//! shell output or a typed fault. Parsing builds a small bounded tree with quick-xml and
//! ignores namespace prefixes (servers choose their own).

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::DecodeError;

pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const ACTION_ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
pub const ACTION_PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
pub const ACTION_CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
pub const ACTION_DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
pub const ACTION_COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
pub const ACTION_RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
pub const ACTION_SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
pub const SIGNAL_TERMINATE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
/// WMI classes of `root\cimv2`: `<prefix><Class>`; `*` with a WQL filter.
pub const RESOURCE_CIMV2: &str = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/";
pub const RESOURCE_STDREGPROV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/StdRegProv";
pub const DIALECT_WQL: &str = "http://schemas.microsoft.com/wbem/wsman/1/WQL";
/// `hDefKey` of HKEY_LOCAL_MACHINE for StdRegProv.
pub const HKLM: u32 = 0x8000_0002;

/// Largest answer parsed (WinRM's MaxEnvelopeSize default is 500 KB).
pub const MAX_RESPONSE: usize = 2 * 1024 * 1024;
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 100_000;

/// `<w:{element}Set>` with one `<w:{element} Name="…">value</w:{element}>` per pair; nothing
/// when there are none.
fn named_set(head: &mut String, element: &str, pairs: &[(&str, &str)]) {
    if pairs.is_empty() {
        return;
    }
    head.push_str(&format!("<w:{element}Set>"));
    for (name, value) in pairs {
        head.push_str(&format!(
            "<w:{element} Name=\"{}\">{}</w:{element}>",
            escape(name),
            escape(value)
        ));
    }
    head.push_str(&format!("</w:{element}Set>"));
}

/// Text escaped for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The addressing header of one request.
pub struct Header<'a> {
    /// `http://host:5985/wsman`.
    pub to: &'a str,
    pub resource_uri: &'a str,
    pub action: &'a str,
    /// `uuid:...`, chosen by the caller.
    pub message_id: &'a str,
    pub max_envelope_size: u32,
    pub timeout_secs: u32,
    pub selectors: &'a [(&'a str, &'a str)],
    pub options: &'a [(&'a str, &'a str)],
}

/// A whole SOAP envelope.
pub fn envelope(h: &Header<'_>, body: &str) -> String {
    let mut head = format!(
        "<a:To>{}</a:To><w:ResourceURI s:mustUnderstand=\"true\">{}</w:ResourceURI>\
<a:ReplyTo><a:Address s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>\
<a:Action s:mustUnderstand=\"true\">{}</a:Action><w:MaxEnvelopeSize s:mustUnderstand=\"true\">{}</w:MaxEnvelopeSize>\
<a:MessageID>{}</a:MessageID><w:Locale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/><p:DataLocale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>\
<w:OperationTimeout>PT{}S</w:OperationTimeout>",
        escape(h.to),
        escape(h.resource_uri),
        escape(h.action),
        h.max_envelope_size,
        escape(h.message_id),
        h.timeout_secs
    );
    named_set(&mut head, "Selector", h.selectors);
    named_set(&mut head, "Option", h.options);
    format!(
        "<s:Envelope xmlns:s=\"{NS_SOAP}\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" \
xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\" xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\">\
<s:Header>{head}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// Enumerate, optimised (items in the answer), with a WQL filter when given.
pub fn enumerate_body(wql: Option<&str>, max_elements: u32) -> String {
    let filter = wql.map_or_else(String::new, |q| {
        format!("<w:Filter Dialect=\"{DIALECT_WQL}\">{}</w:Filter>", escape(q))
    });
    format!("<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>{max_elements}</w:MaxElements>{filter}</n:Enumerate>")
}

pub fn pull_body(context: &str, max_elements: u32) -> String {
    format!(
        "<n:Pull><n:EnumerationContext>{}</n:EnumerationContext><n:MaxElements>{max_elements}</n:MaxElements></n:Pull>",
        escape(context)
    )
}

/// An Invoke body: `<m:Method_INPUT xmlns:m="resource">` with the parameters in order.
pub fn invoke_body(resource_uri: &str, method: &str, params: &[(&str, &str)]) -> String {
    let mut body = format!("<m:{method}_INPUT xmlns:m=\"{}\">", escape(resource_uri));
    for (name, value) in params {
        body.push_str(&format!("<m:{name}>{}</m:{name}>", escape(value)));
    }
    body.push_str(&format!("</m:{method}_INPUT>"));
    body
}

pub fn shell_create_body() -> String {
    "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>".into()
}

pub fn command_body(command: &str, arguments: &[&str]) -> String {
    let args: String = arguments
        .iter()
        .map(|a| format!("<rsp:Arguments>{}</rsp:Arguments>", escape(a)))
        .collect();
    format!(
        "<rsp:CommandLine><rsp:Command>{}</rsp:Command>{args}</rsp:CommandLine>",
        escape(command)
    )
}

pub fn receive_body(command_id: &str) -> String {
    format!(
        "<rsp:Receive><rsp:DesiredStream CommandId=\"{}\">stdout stderr</rsp:DesiredStream></rsp:Receive>",
        escape(command_id)
    )
}

pub fn signal_body(command_id: &str, code: &str) -> String {
    format!(
        "<rsp:Signal CommandId=\"{}\"><rsp:Code>{}</rsp:Code></rsp:Signal>",
        escape(command_id),
        escape(code)
    )
}

// --- parsing -------------------------------------------------------------------------------

/// One element: local name, attributes by local name, text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Depth-first search for the first element of that local name.
    pub fn find(&self, name: &str) -> Option<&Node> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// All text below this element, concatenated (embedded objects such as a CIM datetime).
    pub fn all_text(&self) -> String {
        let mut out = self.text.clone();
        for c in &self.children {
            out.push_str(&c.all_text());
        }
        out
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.rsplit(':').next().unwrap_or("").to_owned()
}

/// Parses an XML document into a tree, bounded in size, depth and element count.
pub fn parse_tree(xml: &[u8]) -> Result<Node, DecodeError> {
    let what = "WS-Management XML";
    if xml.len() > MAX_RESPONSE {
        return Err(DecodeError::TooLong {
            what,
            len: xml.len(),
            limit: MAX_RESPONSE,
        });
    }
    let mut reader = Reader::from_reader(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut nodes = 0usize;
    let mut buf = Vec::new();
    let bad = |e: &dyn std::fmt::Display| DecodeError::invalid(what, e.to_string());
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| bad(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                nodes += 1;
                if nodes > MAX_NODES || stack.len() > MAX_DEPTH {
                    return Err(DecodeError::TooLong {
                        what: "XML elements or depth",
                        len: nodes.max(stack.len()),
                        limit: MAX_NODES,
                    });
                }
                let mut node = Node {
                    name: local(e.name().as_ref()),
                    ..Node::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(&e))?;
                    let value = a.unescape_value().map_err(|e| bad(&e))?.into_owned();
                    node.attrs.push((local(a.key.as_ref()), value));
                }
                if matches!(event, Event::Empty(_)) {
                    stack.last_mut().ok_or_else(|| bad(&"unbalanced"))?.children.push(node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| bad(&"unbalanced end tag"))?;
                stack
                    .last_mut()
                    .ok_or_else(|| bad(&"unbalanced end tag"))?
                    .children
                    .push(node);
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| bad(&e))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            // Entities arrive as their own events: the five XML ones and character references.
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| bad(&e))?
                } else {
                    match r.decode().map_err(|e| bad(&e))?.as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        other => return Err(bad(&format!("unknown entity &{other};"))),
                    }
                };
                if let (Some(c), Some(top)) = (resolved, stack.last_mut()) {
                    top.text.push(c);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err(bad(&"unclosed elements"));
    }
    let root = stack.pop().unwrap_or_default();
    root.children.into_iter().next().ok_or_else(|| bad(&"no root element"))
}

/// A property of a WMI instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Text(String),
    /// `xsi:nil="true"`: the property has no value.
    Nil,
    /// The element repeated: an array property.
    List(Vec<String>),
}

/// One WMI instance (or a method's output): its class and properties in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub class: String,
    pub properties: Vec<(String, Prop)>,
}

impl Item {
    pub fn get(&self, name: &str) -> Option<&Prop> {
        self.properties
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| p)
    }

    /// A property as text (the first element of a list).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Prop::Text(t) => Some(t),
            Prop::List(v) => v.first().map(String::as_str),
            Prop::Nil => None,
        }
    }

    fn from_node(node: &Node) -> Item {
        let mut properties: Vec<(String, Prop)> = Vec::new();
        for c in &node.children {
            let value = if c.attr("nil") == Some("true") {
                None
            } else {
                Some(c.all_text())
            };
            match (properties.iter_mut().find(|(n, _)| *n == c.name), value) {
                (Some((_, Prop::List(v))), Some(t)) => v.push(t),
                (Some((_, existing @ Prop::Text(_))), Some(t)) => {
                    let first = match existing {
                        Prop::Text(f) => f.clone(),
                        _ => String::new(),
                    };
                    *existing = Prop::List(vec![first, t]);
                }
                (Some(_), _) => {}
                (None, Some(t)) => properties.push((c.name.clone(), Prop::Text(t))),
                (None, None) => properties.push((c.name.clone(), Prop::Nil)),
            }
        }
        Item {
            class: node.name.clone(),
            properties,
        }
    }
}

/// What a successful answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// EnumerateResponse or PullResponse: items, and the context to pull more with.
    Items {
        items: Vec<Item>,
        context: Option<String>,
        end_of_sequence: bool,
    },
    /// A method's `*_OUTPUT`.
    Output(Item),
    ShellCreated {
        shell_id: String,
    },
    CommandStarted {
        command_id: String,
    },
    Received {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        done: bool,
        exit_code: Option<i64>,
    },
    /// Delete, Signal and other answers with nothing to read.
    Empty,
}

/// A SOAP fault, with the WS-Management detail Windows adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: String,
    pub subcode: String,
    pub reason: String,
    /// `WSManFault Code` (e.g. 5 access denied, 2150858752 WMI error).
    pub wsman_code: Option<u64>,
    pub message: String,
}

impl Fault {
    /// The coarse cause, for reports and errors.
    pub fn kind(&self) -> FaultKind {
        let sub = self.subcode.to_ascii_lowercase();
        if sub.ends_with("accessdenied") || self.wsman_code == Some(5) {
            FaultKind::AccessDenied
        } else if sub.ends_with("timedout") {
            FaultKind::Timeout
        } else if sub.ends_with("destinationunreachable")
            || sub.ends_with("invalidselectors")
            || sub.ends_with("cannotprocessfilter")
        {
            FaultKind::NotFound
        } else if sub.ends_with("quotalimit") {
            FaultKind::Quota
        } else {
            FaultKind::Other
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    AccessDenied,
    /// Unknown class, selector or filter.
    NotFound,
    Quota,
    Timeout,
    Other,
}

/// Parses an answer: what it holds, or the fault the server sent.
pub fn parse_answer(xml: &[u8]) -> Result<Result<Answer, Fault>, DecodeError> {
    let root = parse_tree(xml)?;
    if root.name != "Envelope" {
        return Err(DecodeError::invalid(
            "WS-Management answer",
            format!("root element {:?}", root.name),
        ));
    }
    let body = root
        .child("Body")
        .ok_or_else(|| DecodeError::invalid("WS-Management answer", "no Body"))?;
    let Some(first) = body.children.first() else {
        // A Create answer may carry the shell id only in the header's selectors.
        return Ok(Ok(
            match root.find("Selector").filter(|s| s.attr("Name") == Some("ShellId")) {
                Some(s) => Answer::ShellCreated {
                    shell_id: s.text.trim().to_owned(),
                },
                None => Answer::Empty,
            },
        ));
    };
    Ok(match first.name.as_str() {
        "Fault" => {
            let value = |path: &[&str]| {
                let mut node = Some(first);
                for p in path {
                    node = node.and_then(|n| n.child(p));
                }
                node.map(|n| n.text.trim().to_owned()).unwrap_or_default()
            };
            let detail = first.find("WSManFault");
            Err(Fault {
                code: value(&["Code", "Value"]),
                subcode: value(&["Code", "Subcode", "Value"]),
                reason: value(&["Reason", "Text"]),
                wsman_code: detail.and_then(|d| d.attr("Code")).and_then(|c| c.parse().ok()),
                message: detail
                    .and_then(|d| d.child("Message"))
                    .map(|m| m.all_text().trim().to_owned())
                    .unwrap_or_default(),
            })
        }
        "EnumerateResponse" | "PullResponse" => {
            let items = first
                .child("Items")
                .map(|i| i.children.iter().map(Item::from_node).collect())
                .unwrap_or_default();
            Ok(Answer::Items {
                items,
                context: first
                    .child("EnumerationContext")
                    .map(|c| c.text.trim().to_owned())
                    .filter(|c| !c.is_empty()),
                end_of_sequence: first.child("EndOfSequence").is_some(),
            })
        }
        "Shell" | "ResourceCreated" => {
            let id = first
                .child("ShellId")
                .map(|n| n.text.trim().to_owned())
                .or_else(|| {
                    root.find("Selector")
                        .filter(|s| s.attr("Name") == Some("ShellId"))
                        .map(|s| s.text.trim().to_owned())
                })
                .ok_or_else(|| DecodeError::invalid("Create answer", "no ShellId"))?;
            Ok(Answer::ShellCreated { shell_id: id })
        }
        "CommandResponse" => Ok(Answer::CommandStarted {
            command_id: first
                .child("CommandId")
                .map(|n| n.text.trim().to_owned())
                .ok_or_else(|| DecodeError::invalid("Command answer", "no CommandId"))?,
        }),
        "ReceiveResponse" => {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            for stream in first.children.iter().filter(|c| c.name == "Stream") {
                let bytes = crate::base64::decode(&stream.text)
                    .ok_or_else(|| DecodeError::invalid("shell stream", "not base64"))?;
                match stream.attr("Name") {
                    Some("stderr") => stderr.extend(bytes),
                    _ => stdout.extend(bytes),
                }
            }
            let state = first.child("CommandState");
            Ok(Answer::Received {
                stdout,
                stderr,
                done: state
                    .and_then(|s| s.attr("State"))
                    .is_some_and(|s| s.ends_with("/Done")),
                exit_code: state
                    .and_then(|s| s.child("ExitCode"))
                    .and_then(|c| c.text.trim().parse().ok()),
            })
        }
        name if name.ends_with("_OUTPUT") => Ok(Answer::Output(Item::from_node(first))),
        _ => Ok(Answer::Empty),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_escape_and_carry_selectors() {
        let h = Header {
            to: "http://h:5985/wsman",
            resource_uri: RESOURCE_CMD,
            action: ACTION_COMMAND,
            message_id: "uuid:1",
            max_envelope_size: 512000,
            timeout_secs: 20,
            selectors: &[("ShellId", "A&B")],
            options: &[],
        };
        let xml = envelope(&h, &command_body("cmd", &["/c", "echo <x>"]));
        assert!(xml.contains("<w:Selector Name=\"ShellId\">A&amp;B</w:Selector>"));
        assert!(xml.contains("<rsp:Arguments>echo &lt;x&gt;</rsp:Arguments>"));
        let tree = parse_tree(xml.as_bytes()).unwrap();
        assert_eq!(tree.find("Arguments").unwrap().children.len(), 0);
        assert_eq!(tree.find("Selector").unwrap().text, "A&B");
    }

    #[test]
    fn items_faults_and_shell_output_parse() {
        let items = br#"<s:Envelope xmlns:s="x" xmlns:n="n" xmlns:w="w"><s:Body><n:EnumerateResponse><w:Items>
<p:Win32_Service xmlns:p="c" xmlns:xsi="i"><p:Name>W3SVC</p:Name><p:State>Running</p:State><p:Desc xsi:nil="true"/></p:Win32_Service>
<p:Win32_QuickFixEngineering xmlns:p="c"><p:HotFixID>KB1</p:HotFixID><p:InstalledOn><cim:Datetime xmlns:cim="d">2021-02-09T00:00:00Z</cim:Datetime></p:InstalledOn><p:Tag>a</p:Tag><p:Tag>b</p:Tag></p:Win32_QuickFixEngineering>
</w:Items><w:EndOfSequence/></n:EnumerateResponse></s:Body></s:Envelope>"#;
        let Ok(Answer::Items {
            items, end_of_sequence, ..
        }) = parse_answer(items).unwrap()
        else {
            panic!()
        };
        assert!(end_of_sequence);
        assert_eq!(items[0].class, "Win32_Service");
        assert_eq!(items[0].text("state"), Some("Running"));
        assert_eq!(items[0].get("Desc"), Some(&Prop::Nil));
        assert_eq!(items[1].text("InstalledOn"), Some("2021-02-09T00:00:00Z"));
        assert_eq!(items[1].get("Tag"), Some(&Prop::List(vec!["a".into(), "b".into()])));

        let fault = br#"<s:Envelope xmlns:s="x"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="">Access is denied. </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="f" Code="5" Machine="h"><f:Message>Access is denied. </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;
        let Err(f) = parse_answer(fault).unwrap() else { panic!() };
        assert_eq!(
            (f.kind(), f.wsman_code, f.reason.as_str()),
            (FaultKind::AccessDenied, Some(5), "Access is denied.")
        );

        let received = br#"<s:Envelope xmlns:s="x"><s:Body><rsp:ReceiveResponse xmlns:rsp="r"><rsp:Stream Name="stdout" CommandId="c">aGVsbG8K</rsp:Stream><rsp:Stream Name="stdout" CommandId="c" End="true"></rsp:Stream><rsp:CommandState CommandId="c" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_answer(received).unwrap(),
            Ok(Answer::Received {
                stdout: b"hello\n".to_vec(),
                stderr: vec![],
                done: true,
                exit_code: Some(0)
            })
        );
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for bad in [
            &b"<a><b></a>"[..],
            b"",
            b"<s:Envelope>",
            b"<x/>",
            b"<?xml?><s:Envelope><s:Body>",
            b"<a b='&bogus;'/>",
        ] {
            let _ = parse_answer(bad);
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse_tree(deep.as_bytes()).is_err());
    }
}
