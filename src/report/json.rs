//! The JSON text of the reports (`--format json` and `jsonl`): serde_json's text byte for
//! byte (its pretty printer's layout or the same on one line, its numbers and its string
//! escapes), written by a serializer of its own that writes each field name at once where
//! serde_json escapes it byte by byte (ARCHITECTURE.md, Budgets: the per-packet cost).

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::Error;
use serde_json::ser::{CharEscape, Formatter as _};

/// How [`write_layout`] lays JSON out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// serde_json's pretty printer's layout: a line per value, two spaces per level.
    Indented,
    /// The same on one line (JSON lines).
    OneLine,
}

/// Bytes of a line break block ([`BREAKS`]).
const BREAK_BYTES: usize = 66;

/// A line break and the most indent [`Formatter::next`] writes at once: after a comma (`,\n`
/// and 64 spaces) and without one (`\n` and 65 spaces). Copied whole, a copy of known size,
/// and cut to the indent of the level; deeper levels write their indent a level at a time.
const BREAKS: [[u8; BREAK_BYTES]; 2] = [line_break(true), line_break(false)];

const fn line_break(comma: bool) -> [u8; BREAK_BYTES] {
    let mut bytes = [b' '; BREAK_BYTES];
    if comma {
        bytes[0] = b',';
    }
    bytes[comma as usize] = b'\n';
    bytes
}

/// serde_json's pretty layout, byte for byte, with each line break and its indent written at
/// once: the pretty printer writes every level of indent by itself, each a call through the
/// `dyn Write`. Its methods write to [`Chunks`] (the only output there is); the
/// `serde_json::ser::Formatter` methods it keeps are those of numbers, `null`, booleans and
/// string escapes.
struct Formatter {
    layout: Layout,
    level: usize,
    has_value: bool,
}

impl Formatter {
    /// Before a value of an array or a key of an object: a comma unless `first`, then a line
    /// break and the indent (also before a closing bracket, as `first`).
    fn next(&mut self, out: &mut Chunks, first: bool) -> io::Result<()> {
        if self.layout == Layout::OneLine {
            return out.write_all(&b","[usize::from(first)..]);
        }
        let block = &BREAKS[usize::from(first)];
        let len = 2 - usize::from(first) + 2 * self.level;
        if len <= BREAK_BYTES {
            return out.write_head(block, len);
        }
        out.write_all(&block[..2 - usize::from(first)])?;
        (0..self.level).try_for_each(|_| out.write_all(b"  "))
    }

    fn open(&mut self, out: &mut Chunks, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close(&mut self, out: &mut Chunks, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.next(out, true)?;
        }
        out.write_all(bracket)
    }

    fn begin_array(&mut self, out: &mut Chunks) -> io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array(&mut self, out: &mut Chunks) -> io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value(&mut self, out: &mut Chunks, first: bool) -> io::Result<()> {
        self.next(out, first)
    }

    fn end_value(&mut self) {
        self.has_value = true;
    }

    fn begin_object(&mut self, out: &mut Chunks) -> io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object(&mut self, out: &mut Chunks) -> io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key(&mut self, out: &mut Chunks, first: bool) -> io::Result<()> {
        self.next(out, first)
    }

    fn begin_object_value(&mut self, out: &mut Chunks) -> io::Result<()> {
        out.write_all(b": ")
    }
}

impl serde_json::ser::Formatter for Formatter {}

/// Bytes of JSON text gathered before they go to the output in one write.
const CHUNK_BYTES: usize = 4096;

/// The JSON text on its way to `out`, gathered in chunks of [`CHUNK_BYTES`]: serde_json writes
/// a few bytes at a time (a key, a quote, a separator), and each write through the `dyn Write`
/// is a call; gathered, it is a copy into the chunk.
struct Chunks<'w> {
    out: &'w mut dyn Write,
    chunk: [u8; CHUNK_BYTES],
    /// Bytes of `chunk` gathered.
    len: usize,
}

impl Chunks<'_> {
    /// Write the gathered text to `out` and start a new chunk.
    fn drain(&mut self) -> io::Result<()> {
        self.out.write_all(&self.chunk[..self.len])?;
        self.len = 0;
        Ok(())
    }

    /// The first `len` bytes of `block`: with the whole block's room left, the whole block is
    /// copied (a copy of known size, a few moves, where one of `len` bytes is a call) and
    /// `len` of it kept.
    #[inline(always)]
    fn write_head<const N: usize>(&mut self, block: &[u8; N], len: usize) -> io::Result<()> {
        match self.chunk.get_mut(self.len..self.len + N) {
            Some(free) => {
                free.copy_from_slice(block);
                self.len += len;
                Ok(())
            }
            None => self.write_all(&block[..len]),
        }
    }

    /// `bytes` that do not fit in what is left of the chunk.
    #[cold]
    fn overflow(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.drain()?;
        match self.chunk.get_mut(..bytes.len()) {
            Some(free) => {
                free.copy_from_slice(bytes);
                self.len = bytes.len();
                Ok(())
            }
            None => self.out.write_all(bytes),
        }
    }
}

impl Write for Chunks<'_> {
    #[inline(always)]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.len + bytes.len();
        match self.chunk.get_mut(self.len..end) {
            Some(free) => {
                free.copy_from_slice(bytes);
                self.len = end;
                Ok(())
            }
            None => self.overflow(bytes),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.out.flush()
    }
}

/// `value` as JSON in `layout`, written to `out` in chunks. The JSON report and the JSON
/// lines share this one serializer: each report type's serialization is in the binary once.
pub(crate) fn write_layout(
    out: &mut dyn Write,
    value: &impl Serialize,
    layout: Layout,
) -> io::Result<()> {
    let mut json = Json {
        out: Chunks { out, chunk: [0; CHUNK_BYTES], len: 0 },
        formatter: Formatter { layout, level: 0, has_value: false },
    };
    value.serialize(&mut json).map_err(|e| match e.io_error_kind() {
        // Keep the kind (a closed pipe is not an error for the caller).
        Some(kind) => io::Error::new(kind, e),
        None => io::Error::other(e),
    })?;
    json.out.drain()
}

/// The serializer: serde_json's `Serializer` call for call (the same [`Formatter`] calls in
/// the same order), except that a struct's field names are written as they are. They are
/// Rust identifiers or `rename`s to such words, with nothing to escape; serde_json scanned
/// each of their bytes for escapes, each byte a few calls when this crate was optimised for
/// size: on the bench trace 28 of the report's 60 instructions per packet. Strings are written here,
/// not through the formatter, which keeps serde_json's own string methods (a quote, the text).
struct Json<'w> {
    out: Chunks<'w>,
    formatter: Formatter,
}

impl Json<'_> {
    /// `text` as a JSON string, escaped as serde_json escapes it: `"`, `\` and the control
    /// characters.
    fn string(&mut self, text: &str) -> io::Result<()> {
        let out = &mut self.out;
        out.write_all(b"\"")?;
        let mut rest = text.as_bytes();
        while let Some(at) = rest.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\') {
            out.write_all(&rest[..at])?;
            let escape = match rest[at] {
                b'"' => CharEscape::Quote,
                b'\\' => CharEscape::ReverseSolidus,
                0x08 => CharEscape::Backspace,
                b'\t' => CharEscape::Tab,
                b'\n' => CharEscape::LineFeed,
                0x0c => CharEscape::FormFeed,
                b'\r' => CharEscape::CarriageReturn,
                control => CharEscape::AsciiControl(control),
            };
            self.formatter.write_char_escape(out, escape)?;
            rest = &rest[at + 1..];
        }
        out.write_all(rest)?;
        out.write_all(b"\"")
    }

    /// `{"variant":` of an enum variant with data, as serde_json writes it.
    fn variant_key(&mut self, variant: &str) -> Result<(), Error> {
        self.formatter.begin_object(&mut self.out).map_err(Error::io)?;
        self.formatter.begin_object_key(&mut self.out, true).map_err(Error::io)?;
        self.string(variant).map_err(Error::io)?;
        self.formatter.begin_object_value(&mut self.out).map_err(Error::io)
    }
}

/// A unit variant written as its name, a newtype struct as what it wraps (a value and a
/// map's key alike).
macro_rules! variant_as_text_and_newtype_as_inner {
    () => {
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), Error> {
            self.serialize_str(variant)
        }

        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            value.serialize(self)
        }
    };
}

/// Methods that hand a narrower integer to the method of its widest kind.
macro_rules! widened {
    ($($method:ident($narrow:ty) => $wide:ident;)*) => {
        $(fn $method(self, value: $narrow) -> Result<(), Error> {
            self.$wide(value.into())
        })*
    };
}

/// Methods that write their value with the formatter's method of its type.
macro_rules! written {
    ($($method:ident($value:ty) => $write:ident;)*) => {
        $(fn $method(self, value: $value) -> Result<(), Error> {
            self.formatter.$write(&mut self.out, value).map_err(Error::io)
        })*
    };
}

impl<'a, 'w> ser::Serializer for &'a mut Json<'w> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'w>;
    type SerializeTuple = Compound<'a, 'w>;
    type SerializeTupleStruct = Compound<'a, 'w>;
    type SerializeTupleVariant = Compound<'a, 'w>;
    type SerializeMap = Compound<'a, 'w>;
    type SerializeStruct = Compound<'a, 'w>;
    type SerializeStructVariant = Compound<'a, 'w>;

    // Every integer width, widened: its digits are the same at any width.
    widened! {
        serialize_i8(i8) => serialize_i64;
        serialize_i16(i16) => serialize_i64;
        serialize_i32(i32) => serialize_i64;
        serialize_u8(u8) => serialize_u64;
        serialize_u16(u16) => serialize_u64;
        serialize_u32(u32) => serialize_u64;
    }

    written! {
        serialize_bool(bool) => write_bool;
        serialize_i64(i64) => write_i64;
        serialize_i128(i128) => write_i128;
        serialize_u64(u64) => write_u64;
        serialize_u128(u128) => write_u128;
    }

    /// Infinities and NaN are `null`, as serde_json writes them.
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        match value.is_finite() {
            true => self.formatter.write_f32(&mut self.out, value).map_err(Error::io),
            false => self.serialize_unit(),
        }
    }

    /// Infinities and NaN are `null`, as serde_json writes them.
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        match value.is_finite() {
            true => self.formatter.write_f64(&mut self.out, value).map_err(Error::io),
            false => self.serialize_unit(),
        }
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.string(value).map_err(Error::io)
    }

    /// An array of numbers, as serde_json writes bytes.
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        let mut seq = self.serialize_seq(Some(value.len()))?;
        value.iter().try_for_each(|byte| seq.element(byte))?;
        seq.end_array()
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.formatter.write_null(&mut self.out).map_err(Error::io)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    variant_as_text_and_newtype_as_inner!();

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant)?;
        value.serialize(&mut *self)?;
        self.formatter.end_value();
        self.formatter.end_object(&mut self.out).map_err(Error::io)
    }

    /// serde_json closes an empty sequence at once; the formatter writes the same text when
    /// it is closed at the end.
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a, 'w>, Error> {
        self.formatter.begin_array(&mut self.out).map_err(Error::io)?;
        Ok(Compound { json: self, first: true })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'w>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'w>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'w>, Error> {
        self.variant_key(variant)?;
        self.serialize_seq(Some(len))
    }

    /// As [`serialize_seq`](Self::serialize_seq), an empty map closed at the end.
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a, 'w>, Error> {
        self.formatter.begin_object(&mut self.out).map_err(Error::io)?;
        Ok(Compound { json: self, first: true })
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'a, 'w>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'w>, Error> {
        self.variant_key(variant)?;
        self.serialize_map(Some(len))
    }
}

/// A sequence, map or struct being written.
struct Compound<'a, 'w> {
    json: &'a mut Json<'w>,
    /// No element or entry written yet.
    first: bool,
}

impl Compound<'_, '_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let json = &mut *self.json;
        json.formatter.begin_array_value(&mut json.out, self.first).map_err(Error::io)?;
        self.first = false;
        value.serialize(&mut *json)?;
        json.formatter.end_value();
        Ok(())
    }

    /// Before a map's key or a struct's field name. Not generic, as what follows it, so that
    /// it is in the binary once, not once per type of value.
    fn key_start(&mut self) -> Result<(), Error> {
        let first = std::mem::replace(&mut self.first, false);
        self.json.formatter.begin_object_key(&mut self.json.out, first).map_err(Error::io)
    }

    /// A struct's field name, written as it is (see [`Json`]), up to its value.
    fn field_name(&mut self, name: &str) -> Result<(), Error> {
        self.key_start()?;
        let json = &mut *self.json;
        let out = &mut json.out;
        let written = out.write_all(b"\"").and_then(|()| out.write_all(name.as_bytes()));
        written.and_then(|()| out.write_all(b"\"")).map_err(Error::io)?;
        json.formatter.begin_object_value(out).map_err(Error::io)
    }

    /// A struct's field: its name as it is, then its value.
    fn field<T: ?Sized + Serialize>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        self.field_name(name)?;
        value.serialize(&mut *self.json)?;
        self.json.formatter.end_value();
        Ok(())
    }

    fn end_array(self) -> Result<(), Error> {
        self.json.formatter.end_array(&mut self.json.out).map_err(Error::io)
    }

    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let json = &mut *self.json;
        json.formatter.begin_object_value(&mut json.out).map_err(Error::io)?;
        value.serialize(&mut *json)?;
        json.formatter.end_value();
        Ok(())
    }

    fn end_object(self) -> Result<(), Error> {
        self.json.formatter.end_object(&mut self.json.out).map_err(Error::io)
    }

    /// The end of an enum variant's data, then of the object around it.
    fn end_variant(
        self,
        end: impl FnOnce(&mut Formatter, &mut Chunks) -> io::Result<()>,
    ) -> Result<(), Error> {
        let json = self.json;
        end(&mut json.formatter, &mut json.out).map_err(Error::io)?;
        json.formatter.end_value();
        json.formatter.end_object(&mut json.out).map_err(Error::io)
    }
}

/// The element-by-element traits (an array, or a variant's array): `method` writes an
/// element, `end` closes them.
macro_rules! elements {
    ($($trait:ident::$method:ident, |$c:ident| $end:expr;)*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                let $c = self;
                $end
            }
        })*
    };
}

elements! {
    SerializeSeq::serialize_element, |c| c.end_array();
    SerializeTuple::serialize_element, |c| c.end_array();
    SerializeTupleStruct::serialize_field, |c| c.end_array();
    SerializeTupleVariant::serialize_field, |c| c.end_variant(|f, out| f.end_array(out));
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.key_start()?;
        key.serialize(MapKey(self.json))
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }

    fn end(self) -> Result<(), Error> {
        self.end_object()
    }
}

/// The field-by-field traits (a struct, or a variant's struct): `end` closes them.
macro_rules! fields {
    ($($trait:ident, |$c:ident| $end:expr;)*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(name, value)
            }

            fn end(self) -> Result<(), Error> {
                let $c = self;
                $end
            }
        })*
    };
}

fields! {
    SerializeStruct, |c| c.end_object();
    SerializeStructVariant, |c| c.end_variant(|f, out| f.end_object(out));
}

/// A map's key. The reports' maps have text keys (a `BTreeMap<&str, _>`, the objects of
/// `serde_json::Value`); any other key is refused.
struct MapKey<'a, 'w>(&'a mut Json<'w>);

/// The error of a key that is not text.
fn key_not_text() -> Error {
    ser::Error::custom("a report's map key must be text")
}

/// Methods that refuse a key.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Error> {
            Err(key_not_text())
        })*
    };
}

impl ser::Serializer for MapKey<'_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.0.string(value).map_err(Error::io)
    }

    variant_as_text_and_newtype_as_inner!();

    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
        Err(key_not_text())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_not_text())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::{Layout, write_layout};

    /// `value` in both layouts is serde_json's pretty text, and the same on one line.
    fn assert_as_serde_json(value: &impl Serialize) {
        let pretty = serde_json::to_string_pretty(value).unwrap();
        let mut out = Vec::new();
        write_layout(&mut out, value, Layout::Indented).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), pretty);
        let one_line: String = pretty.lines().map(str::trim_start).collect();
        let mut out = Vec::new();
        write_layout(&mut out, value, Layout::OneLine).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), one_line);
    }

    /// The layouts are serde_json's pretty printer's, byte for byte, at any depth (also
    /// beyond the indent written at once), and the same on one line.
    #[test]
    fn layouts_are_the_pretty_printers() {
        let mut deep = serde_json::json!({"leaf": [1, {"a": "x\ny"}, [], {}], "n": null});
        for level in 0..40 {
            deep = serde_json::json!({ "level": level, "inner": [deep, "s"], "empty": [] });
        }
        assert_as_serde_json(&deep);
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u16);

    #[derive(Serialize)]
    struct Empty {}

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(i8),
        Tuple(u8, char),
        Struct { share: f32, empty: Empty },
    }

    #[derive(Serialize)]
    struct Every {
        #[serde(rename = "type")]
        shapes: Vec<Shape>,
        text: String,
        map: BTreeMap<String, Option<f64>>,
        numbers: (i16, i32, i64, i128, u32, u64, u128, f32, f64),
        flags: [bool; 2],
        unit: Unit,
        newtype: Newtype,
        empty: Empty,
        nothing: Vec<()>,
    }

    /// Every shape of value serde hands a serializer is written as serde_json writes it:
    /// structs (their field names unescaped), enums, options, numbers of each width with the
    /// non-finite floats as `null`, and text with each escape, in values and in keys.
    #[test]
    fn values_are_serde_jsons() {
        let text: String = (0u8..0x80).map(char::from).chain(['é', '€', '😀']).collect();
        let every = Every {
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(-8),
                Shape::Tuple(8, '"'),
                Shape::Struct { share: 0.1, empty: Empty {} },
            ],
            text: text.clone(),
            map: BTreeMap::from([
                (text, Some(f64::NAN)),
                ("k".into(), Some(1e300)),
                ("n".into(), None),
            ]),
            numbers: (-16, -32, i64::MIN, i128::MIN, 32, u64::MAX, u128::MAX, f32::INFINITY, 0.3),
            flags: [true, false],
            unit: Unit,
            newtype: Newtype(16),
            empty: Empty {},
            nothing: Vec::new(),
        };
        assert_as_serde_json(&every);
    }

    /// A map whose keys are not text is refused (serde_json would quote numbers; the
    /// reports have no such map).
    #[test]
    fn keys_other_than_text_are_refused() {
        let numbered = BTreeMap::from([(1u8, 2u8)]);
        assert!(write_layout(&mut Vec::new(), &numbered, Layout::OneLine).is_err());
    }
}
