//! The mutation engine: turns a corpus input into a nearby hostile one. Deterministic from the
//! caller's RNG, so a run is reproduced by its seed.

use rand::rngs::StdRng;
use rand::Rng;

/// Inputs never grow past this: parsers have their own (much larger) limits, and a fuzzer that
/// spends its time copying megabytes finds nothing more.
pub const MAX_LEN: usize = 64 * 1024;

/// Byte values that sit on boundaries parsers get wrong.
const INTERESTING_BYTES: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'\n', b'"', b'\\', b'%', b'='];

/// Multi-byte values worth writing over anything: extreme integers in the encodings the parsers
/// read (little-endian headers, decimal text, protobuf varints).
const INTERESTING_CHUNKS: [&[u8]; 12] = [
    &[0xff, 0xff, 0xff, 0xff],
    &[0, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    b"18446744073709551615",
    b"-1",
    b"0",
    b"4294967296",
    b"1e999",
    b"NaN",
    b"99999999999999999999999999",
    b"\xf0\x9f\x92\xa9",
];

/// Tokens for text formats: structure characters and values of every JSON/XML/URI kind.
const TOKENS: [&str; 28] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "-0",
    "0.5",
    "[]",
    "{}",
    "\"\"",
    "<",
    ">",
    "</",
    "&amp;",
    "<![CDATA[",
    "&",
    "=",
    "?",
    "%",
    "%zz",
    "otpauth://",
    "\\u0000",
    "\r\n",
];

/// JSON values to swap in for a string or number in the input.
const JSON_VALUES: [&str; 12] = [
    "null",
    "0",
    "-1",
    "1e308",
    "18446744073709551616",
    "\"\"",
    "\"AAAA\"",
    "[]",
    "{}",
    "true",
    "\"\\ud800\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
];

/// Applies one to four random mutations to `input`. `others` are the rest of the corpus, for
/// splicing; `text` enables the token-level mutations.
pub fn mutate(rng: &mut StdRng, input: &[u8], others: &[Vec<u8>], text: bool) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = rng.gen_range(1..=4);
    for _ in 0..rounds {
        let kinds = if text { 14 } else { 9 };
        match rng.gen_range(0..kinds) {
            0 => bit_flip(rng, &mut out),
            1 => replace_byte(rng, &mut out),
            2 => insert_bytes(rng, &mut out),
            3 => delete_range(rng, &mut out),
            4 => truncate(rng, &mut out),
            5 => splice(rng, &mut out, others),
            6 => interesting(rng, &mut out),
            7 => long_repeat(rng, &mut out),
            8 => duplicate_chunk(rng, &mut out),
            9 => insert_token(rng, &mut out),
            10 => duplicate_line(rng, &mut out),
            11 => delete_line(rng, &mut out),
            12 => swap_lines(rng, &mut out),
            _ => json_value_swap(rng, &mut out),
        }
    }
    out.truncate(MAX_LEN);
    out
}

fn pos(rng: &mut StdRng, len: usize) -> usize {
    rng.gen_range(0..=len)
}

fn bit_flip(rng: &mut StdRng, out: &mut [u8]) {
    if out.is_empty() {
        return;
    }
    let i = rng.gen_range(0..out.len());
    let bit = rng.gen_range(0..8);
    if let Some(b) = out.get_mut(i) {
        *b ^= 1 << bit;
    }
}

fn replace_byte(rng: &mut StdRng, out: &mut [u8]) {
    if out.is_empty() {
        return;
    }
    let i = rng.gen_range(0..out.len());
    let v = if rng.gen_bool(0.5) {
        INTERESTING_BYTES[rng.gen_range(0..INTERESTING_BYTES.len())]
    } else {
        rng.gen()
    };
    if let Some(b) = out.get_mut(i) {
        *b = v;
    }
}

fn insert_bytes(rng: &mut StdRng, out: &mut Vec<u8>) {
    let at = pos(rng, out.len());
    let n = rng.gen_range(1..=16);
    let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
    out.splice(at..at, bytes);
}

fn delete_range(rng: &mut StdRng, out: &mut Vec<u8>) {
    if out.is_empty() {
        return;
    }
    let at = rng.gen_range(0..out.len());
    let n = rng.gen_range(1..=(out.len() - at).min(64));
    out.drain(at..at + n);
}

fn truncate(rng: &mut StdRng, out: &mut Vec<u8>) {
    let at = pos(rng, out.len());
    out.truncate(at);
}

/// The head of this input and the tail of another: mixes two valid structures.
fn splice(rng: &mut StdRng, out: &mut Vec<u8>, others: &[Vec<u8>]) {
    if others.is_empty() {
        return;
    }
    let other = &others[rng.gen_range(0..others.len())];
    let cut = pos(rng, out.len());
    let from = pos(rng, other.len());
    out.truncate(cut);
    out.extend_from_slice(other.get(from..).unwrap_or_default());
}

fn interesting(rng: &mut StdRng, out: &mut Vec<u8>) {
    let chunk = INTERESTING_CHUNKS[rng.gen_range(0..INTERESTING_CHUNKS.len())];
    let at = pos(rng, out.len());
    if rng.gen_bool(0.5) {
        // Overwrite in place, keeping the length: fixed-layout headers stay aligned.
        let end = (at + chunk.len()).min(out.len());
        out.splice(at..end, chunk.iter().copied());
    } else {
        out.splice(at..at, chunk.iter().copied());
    }
}

fn long_repeat(rng: &mut StdRng, out: &mut Vec<u8>) {
    let at = pos(rng, out.len());
    let b = if rng.gen_bool(0.5) {
        INTERESTING_BYTES[rng.gen_range(0..INTERESTING_BYTES.len())]
    } else {
        out.get(at).copied().unwrap_or(b'A')
    };
    let n = rng.gen_range(16..=4096);
    out.splice(at..at, std::iter::repeat_n(b, n));
}

fn duplicate_chunk(rng: &mut StdRng, out: &mut Vec<u8>) {
    if out.is_empty() {
        return;
    }
    let at = rng.gen_range(0..out.len());
    let n = rng.gen_range(1..=(out.len() - at).min(256));
    let chunk: Vec<u8> = out[at..at + n].to_vec();
    let to = pos(rng, out.len());
    out.splice(to..to, chunk);
}

fn insert_token(rng: &mut StdRng, out: &mut Vec<u8>) {
    let t = TOKENS[rng.gen_range(0..TOKENS.len())];
    let at = pos(rng, out.len());
    out.splice(at..at, t.bytes());
}

/// Line boundaries as (start, end-with-newline) pairs.
fn lines(out: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut start = 0;
    for (i, b) in out.iter().enumerate() {
        if *b == b'\n' {
            v.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < out.len() {
        v.push((start, out.len()));
    }
    v
}

fn duplicate_line(rng: &mut StdRng, out: &mut Vec<u8>) {
    let ls = lines(out);
    if ls.is_empty() {
        return;
    }
    let (s, e) = ls[rng.gen_range(0..ls.len())];
    let line = out[s..e].to_vec();
    out.splice(e..e, line);
}

fn delete_line(rng: &mut StdRng, out: &mut Vec<u8>) {
    let ls = lines(out);
    if ls.is_empty() {
        return;
    }
    let (s, e) = ls[rng.gen_range(0..ls.len())];
    out.drain(s..e);
}

fn swap_lines(rng: &mut StdRng, out: &mut Vec<u8>) {
    let ls = lines(out);
    if ls.len() < 2 {
        return;
    }
    let mut ranges: Vec<Vec<u8>> = ls.iter().map(|(s, e)| out[*s..*e].to_vec()).collect();
    let a = rng.gen_range(0..ranges.len());
    let b = rng.gen_range(0..ranges.len());
    ranges.swap(a, b);
    *out = ranges.concat();
}

/// Replaces one JSON scalar (a quoted string or a number) with a value of another type, so a
/// parser meets the wrong type in a field it knows.
fn json_value_swap(rng: &mut StdRng, out: &mut Vec<u8>) {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < out.len() && out[i] != b'"' {
                    i += if out[i] == b'\\' { 2 } else { 1 };
                }
                spans.push((start, (i + 1).min(out.len())));
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < out.len()
                    && matches!(out[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                spans.push((start, i));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if spans.is_empty() {
        return;
    }
    let (s, e) = spans[rng.gen_range(0..spans.len())];
    let v = JSON_VALUES[rng.gen_range(0..JSON_VALUES.len())];
    out.splice(s..e, v.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mutation_is_deterministic_from_the_seed() {
        let corpus = vec![
            b"{\"a\": 1,\n\"b\": \"x\"}\n".to_vec(),
            b"line\nother\n".to_vec(),
        ];
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200)
                .map(|i| mutate(&mut rng, &corpus[i % 2], &corpus, true))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn mutation_of_empty_input_does_not_panic() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let out = mutate(&mut rng, &[], &[], true);
            assert!(out.len() <= MAX_LEN);
        }
    }
}
