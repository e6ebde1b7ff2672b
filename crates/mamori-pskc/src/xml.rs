//! A small, bounded XML reader on top of `quick-xml`: it reads the root element's start tag,
//! then hands over each child of the root as a little owned tree, one at a time, so memory
//! stays bounded by the largest key package rather than the whole file.
//!
//! Matching is by *local name* only: vendors write `pskc:Key`, `Key` or `ns1:Key` and bind
//! the prefixes to the PSKC, XML Encryption and PKCS #5 namespaces (or, in the wild, to
//! slightly wrong ones). Element names are unique enough within a `KeyContainer` that the
//! prefix adds no safety, and being tolerant here avoids refusing real vendor files.
//!
//! Refused outright: `<!DOCTYPE …>` (hence no entity declarations, no external entities, no
//! expansion bombs), non-UTF-8 input, nesting deeper than [`MAX_DEPTH`], and more than
//! [`MAX_ELEMENTS_PER_CHILD`] elements under one child of the root.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zeroize::Zeroize;

use crate::error::{Location, PskcError};

/// Deepest element nesting accepted (the RFC 6030 figures nest at most 8 deep).
pub const MAX_DEPTH: usize = 32;

/// Most elements accepted under one child of `KeyContainer` (a key package has about 20).
pub const MAX_ELEMENTS_PER_CHILD: usize = 10_000;

/// One element with its local name, attributes (by local name), direct text and children.
/// Text is wiped on drop: `PlainValue` text is a secret in Base64.
pub(crate) struct Element {
    pub name: String,
    attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    text: String,
}

impl Drop for Element {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl Element {
    fn from_start(start: &BytesStart<'_>, input: &str, pos: u64) -> Result<Self, PskcError> {
        let name = utf8(start.local_name().as_ref(), input, pos)?;
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| syntax(input, pos, &e.to_string()))?;
            let key = utf8(attr.key.local_name().as_ref(), input, pos)?;
            let value = attr
                .unescape_value()
                .map_err(|_| {
                    syntax(
                        input,
                        pos,
                        "invalid character or entity reference in an attribute value",
                    )
                })?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name,
            attrs,
            children: Vec::new(),
            text: String::new(),
        })
    }

    /// The value of the attribute with this local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Element> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The direct text content with surrounding whitespace removed.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The text of a child element, trimmed, or `None` when the child is absent or empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    }
}

/// Reads a document as its root start tag followed by the root's children, one at a time.
pub(crate) struct Document<'a> {
    reader: Reader<&'a [u8]>,
    input: &'a str,
    root_closed: bool,
}

impl<'a> Document<'a> {
    /// Reads up to and including the root element's start tag. An empty root element
    /// (`<KeyContainer/>`) yields no children.
    pub fn open(input: &'a str) -> Result<(Self, Element), PskcError> {
        let mut reader = Reader::from_reader(input.as_bytes());
        reader.config_mut().check_comments = true;
        reader.config_mut().check_end_names = true;
        let mut doc = Document {
            reader,
            input,
            root_closed: false,
        };
        loop {
            let pos = doc.reader.buffer_position();
            match doc.next_event()? {
                Event::Start(s) => {
                    let root = Element::from_start(&s, input, pos)?;
                    return Ok((doc, root));
                }
                Event::Empty(s) => {
                    let root = Element::from_start(&s, input, pos)?;
                    doc.root_closed = true;
                    doc.expect_end_of_document()?;
                    return Ok((doc, root));
                }
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(syntax(input, pos, "text before the root element"));
                    }
                }
                Event::End(_) | Event::CData(_) => {
                    return Err(syntax(input, pos, "content before the root element"));
                }
                Event::Eof => return Err(syntax(input, pos, "the document has no root element")),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
    }

    /// The next child element of the root, as an owned tree, or `None` after the root's end tag
    /// (in which case the rest of the document has been checked to hold no further elements).
    pub fn next_child(&mut self) -> Result<Option<Element>, PskcError> {
        if self.root_closed {
            return Ok(None);
        }
        loop {
            let pos = self.reader.buffer_position();
            match self.next_event()? {
                Event::Start(s) => {
                    let first = Element::from_start(&s, self.input, pos)?;
                    return self.read_subtree(first).map(Some);
                }
                Event::Empty(s) => {
                    return Element::from_start(&s, self.input, pos).map(Some);
                }
                Event::End(_) => {
                    self.root_closed = true;
                    self.expect_end_of_document()?;
                    return Ok(None);
                }
                Event::Eof => {
                    return Err(syntax(
                        self.input,
                        pos,
                        "the file ends before the root element is closed",
                    ))
                }
                // Text directly in KeyContainer is only indentation; comments and processing
                // instructions carry nothing for us.
                Event::Text(_)
                | Event::CData(_)
                | Event::Comment(_)
                | Event::PI(_)
                | Event::Decl(_) => {}
                Event::DocType(_) => {
                    return Err(PskcError::Doctype {
                        line: line_of(self.input, pos),
                    })
                }
            }
        }
    }

    /// Builds the tree under `first` (whose start tag was just read) without recursion.
    fn read_subtree(&mut self, first: Element) -> Result<Element, PskcError> {
        let mut stack: Vec<Element> = vec![first];
        let mut count = 1usize;
        loop {
            let pos = self.reader.buffer_position();
            let event = self.next_event()?;
            match event {
                Event::Start(s) => {
                    count += 1;
                    check_counts(count, stack.len() + 2)?;
                    stack.push(Element::from_start(&s, self.input, pos)?);
                }
                Event::Empty(s) => {
                    count += 1;
                    check_counts(count, stack.len() + 2)?;
                    let el = Element::from_start(&s, self.input, pos)?;
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(el);
                    }
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|_| {
                        syntax(
                            self.input,
                            pos,
                            "invalid character or entity reference in text",
                        )
                    })?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::CData(c) => {
                    let text = c
                        .decode()
                        .map_err(|_| syntax(self.input, pos, "CDATA is not UTF-8"))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::End(_) => {
                    // check_end_names guarantees the end tag matches the innermost start tag.
                    let Some(done) = stack.pop() else {
                        return Err(syntax(self.input, pos, "unbalanced end tag"));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Eof => {
                    return Err(syntax(self.input, pos, "the file ends inside an element"));
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
                Event::DocType(_) => {
                    return Err(PskcError::Doctype {
                        line: line_of(self.input, pos),
                    })
                }
            }
        }
    }

    /// After the root element: only whitespace, comments and processing instructions.
    fn expect_end_of_document(&mut self) -> Result<(), PskcError> {
        loop {
            let pos = self.reader.buffer_position();
            match self.next_event()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => {
                    return Err(PskcError::Doctype {
                        line: line_of(self.input, pos),
                    })
                }
                _ => return Err(syntax(self.input, pos, "content after the root element")),
            }
        }
    }

    fn next_event(&mut self) -> Result<Event<'a>, PskcError> {
        let pos = self.reader.buffer_position();
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(PskcError::Doctype {
                line: line_of(self.input, pos),
            }),
            Ok(event) => Ok(event),
            Err(e) => {
                let at = self.reader.error_position().max(pos);
                Err(syntax(self.input, at, &e.to_string()))
            }
        }
    }
}

fn check_counts(count: usize, depth: usize) -> Result<(), PskcError> {
    // `depth` counts the root too.
    if depth > MAX_DEPTH {
        return Err(PskcError::Limit {
            location: Location::Container,
            what: "XML nesting depth",
            limit: MAX_DEPTH as u64,
        });
    }
    if count > MAX_ELEMENTS_PER_CHILD {
        return Err(PskcError::Limit {
            location: Location::Container,
            what: "the number of XML elements in one key package",
            limit: MAX_ELEMENTS_PER_CHILD as u64,
        });
    }
    Ok(())
}

fn utf8(bytes: &[u8], input: &str, pos: u64) -> Result<String, PskcError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| syntax(input, pos, "a name is not UTF-8"))
}

fn syntax(input: &str, pos: u64, reason: &str) -> PskcError {
    PskcError::XmlSyntax {
        line: line_of(input, pos),
        reason: reason.to_string(),
    }
}

/// 1-based line number of byte offset `pos`.
pub(crate) fn line_of(input: &str, pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(input.len());
    1 + input
        .as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}
