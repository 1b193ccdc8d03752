//! Reading the common query without hickory's message decoder: a header,
//! one question with a plain name, and at most a bare EDNS OPT record.
//! That is nearly every question a Pod's stub resolver (or dnsperf) asks;
//! anything else is `None` and goes to the full hickory-based handler, so
//! this parser only has to be right about what it accepts.

/// Longest name on the wire (RFC 1035 2.3.4).
const MAX_NAME_WIRE: usize = 255;
const HEADER_LEN: usize = 12;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// A question the fast path can answer.
#[derive(Debug)]
pub struct Question<'p> {
    pub id: u16,
    /// Recursion desired and checking disabled: echoed in the answer.
    pub rd: bool,
    pub cd: bool,
    /// The question section as received (name, type, class): answers
    /// repeat it verbatim, so the client sees its own letter case.
    pub section: &'p [u8],
    pub qtype: u16,
    /// The client's EDNS UDP payload size when the query had an OPT.
    pub edns_payload: Option<u16>,
    key: [u8; MAX_NAME_WIRE],
    key_len: usize,
}

impl Question<'_> {
    /// The name as the table keys it: lowercase, dotted, no trailing dot.
    pub fn key(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' are ever written.
        std::str::from_utf8(&self.key[..self.key_len]).unwrap_or_default()
    }
}

fn u16_at(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// Bytes the fast path lets through in a label. Others (escapes, dots
/// inside labels, non-ASCII) are legal DNS but rare; hickory handles them.
fn plain_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The question of `packet`, or None when it needs the full handler.
pub fn parse(packet: &[u8]) -> Option<Question<'_>> {
    if packet.len() < HEADER_LEN {
        return None;
    }
    let id = u16_at(packet, 0)?;
    let (flags_hi, flags_lo) = (packet[2], packet[3]);
    let is_response = flags_hi & 0x80 != 0;
    let opcode = (flags_hi >> 3) & 0x0f;
    let truncated = flags_hi & 0x02 != 0;
    if is_response || opcode != 0 || truncated {
        return None;
    }
    let counts = [
        u16_at(packet, 4)?,
        u16_at(packet, 6)?,
        u16_at(packet, 8)?,
        u16_at(packet, 10)?,
    ];
    if counts[0] != 1 || counts[1] != 0 || counts[2] != 0 || counts[3] > 1 {
        return None;
    }

    let mut key = [0u8; MAX_NAME_WIRE];
    let mut key_len = 0;
    let mut at = HEADER_LEN;
    loop {
        let len = *packet.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        // 0x40.. are compression pointers and extended label types.
        if len > 63 || at + 1 + len - HEADER_LEN > MAX_NAME_WIRE - 1 {
            return None;
        }
        let label = packet.get(at + 1..at + 1 + len)?;
        if !label.iter().all(|&b| plain_label_byte(b)) {
            return None;
        }
        if key_len > 0 {
            key[key_len] = b'.';
            key_len += 1;
        }
        for &b in label {
            key[key_len] = b.to_ascii_lowercase();
            key_len += 1;
        }
        at += 1 + len;
    }
    if key_len == 0 {
        // The root: never ours.
        return None;
    }
    let qtype = u16_at(packet, at)?;
    let qclass = u16_at(packet, at + 2)?;
    if qclass != CLASS_IN {
        return None;
    }
    let section = &packet[HEADER_LEN..at + 4];
    at += 4;

    let mut edns_payload = None;
    if counts[3] == 1 {
        // Only a bare OPT: root owner, version 0, no options.
        let owner = *packet.get(at)?;
        let rtype = u16_at(packet, at + 1)?;
        let payload = u16_at(packet, at + 3)?;
        let version = *packet.get(at + 6)?;
        let rdlen = u16_at(packet, at + 9)?;
        if owner != 0 || rtype != TYPE_OPT || version != 0 || rdlen != 0 {
            return None;
        }
        edns_payload = Some(payload);
        at += 11;
    }
    if at != packet.len() {
        return None;
    }
    Some(Question {
        id,
        rd: flags_hi & 0x01 != 0,
        cd: flags_lo & 0x10 != 0,
        section,
        qtype,
        edns_payload,
        key,
        key_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{DNSClass, Name, RecordType};

    fn query(name: &str, qtype: RecordType, edns: Option<Edns>) -> Vec<u8> {
        let mut msg = Message::new(0x1234, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(e) = edns {
            msg.set_edns(e);
        }
        msg.to_vec().unwrap()
    }

    #[test]
    fn plain_query_is_read_and_lowercased() {
        let bytes = query("Web.Default.svc.cluster.local.", RecordType::A, None);
        let q = parse(&bytes).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.rd);
        assert!(!q.cd);
        assert_eq!(q.key(), "web.default.svc.cluster.local");
        assert_eq!(q.qtype, 1);
        assert_eq!(q.edns_payload, None);
        assert_eq!(q.section, &bytes[12..]);
        assert_eq!(&q.section[1..4], b"Web", "case kept");
    }

    #[test]
    fn bare_edns_is_read_and_options_are_not() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        let q = query("a.b.", RecordType::AAAA, Some(e));
        assert_eq!(parse(&q).unwrap().edns_payload, Some(1232));

        let mut v1 = Edns::new();
        v1.set_version(1);
        assert!(parse(&query("a.b.", RecordType::A, Some(v1))).is_none());

        let mut with_option = Edns::new();
        with_option
            .options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                10,
                vec![1, 2, 3, 4, 5, 6, 7, 8],
            ));
        assert!(parse(&query("a.b.", RecordType::A, Some(with_option))).is_none());
    }

    #[test]
    fn unusual_queries_are_left_to_the_full_handler() {
        let good = query("a.b.", RecordType::A, None);
        assert!(parse(&good).is_some());
        // Response bit, other opcode, truncated, two questions, trailing
        // bytes, too short, the root, class CH, odd label bytes.
        let mut resp = good.clone();
        resp[2] |= 0x80;
        assert!(parse(&resp).is_none());
        let mut notify = good.clone();
        notify[2] |= 4 << 3;
        assert!(parse(&notify).is_none());
        let mut tc = good.clone();
        tc[2] |= 0x02;
        assert!(parse(&tc).is_none());
        let mut two = good.clone();
        two[5] = 2;
        assert!(parse(&two).is_none());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse(&trailing).is_none());
        assert!(parse(&good[..good.len() - 1]).is_none());
        assert!(parse(&good[..11]).is_none());
        assert!(parse(&query(".", RecordType::NS, None)).is_none());
        let mut chaos = Message::new(1, MessageType::Query, OpCode::Query);
        let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
        q.set_query_class(DNSClass::CH);
        chaos.add_query(q);
        assert!(parse(&chaos.to_vec().unwrap()).is_none());
        assert!(parse(&query("a\\.b.c.", RecordType::A, None)).is_none());
    }

    #[test]
    fn compressed_question_name_is_not_read() {
        // A pointer (0xc0) where a label length belongs.
        let mut bytes = query("a.b.", RecordType::A, None);
        let at = 12;
        bytes[at] = 0xc0;
        assert!(parse(&bytes).is_none());
    }
}
