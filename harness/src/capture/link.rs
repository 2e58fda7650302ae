//! Link-layer headers down to the IP datagram: Ethernet (with 802.1Q/802.1ad tags), raw IP,
//! Linux SLL and SLL2, BSD loopback/NULL and OpenBSD LOOP.
//!
//! Pure functions over byte slices; must not depend on files, clocks or the pcap-file crate.

use std::fmt;

/// The link type of a capture or a pcapng interface (the LINKTYPE_ numbers of tcpdump.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// BSD loopback/NULL (0): a 4-byte address family in the capturing host's byte order.
    Null,
    /// Ethernet (1).
    Ethernet,
    /// Raw IP (101, and the old values 12 and 14); version chosen by the first nibble.
    RawIp,
    /// OpenBSD loopback (108): a 4-byte address family, big-endian.
    Loop,
    /// Linux cooked capture v1 (113).
    LinuxSll,
    /// Raw IPv4 (228).
    Ipv4,
    /// Raw IPv6 (229).
    Ipv6,
    /// Linux cooked capture v2 (276).
    LinuxSll2,
    /// Any other link type, by number; its records are reported as not IP.
    Other(u32),
}

impl LinkType {
    /// The link type for a LINKTYPE_ number.
    pub fn from_number(n: u32) -> LinkType {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The LINKTYPE_ number (101 for raw IP).
    pub fn number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            LinkType::Null => "NULL",
            LinkType::Ethernet => "EN10MB",
            LinkType::RawIp => "RAW",
            LinkType::Loop => "LOOP",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Other(n) => return write!(f, "linktype {n}"),
        };
        f.write_str(name)
    }
}

/// Why a record holds no IP datagram (not an error: ARP, LLDP and the like are normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotIp {
    /// The frame is shorter than its link-layer header.
    ShortFrame {
        /// Bytes the link header needs.
        needed: usize,
        /// Bytes the record holds.
        have: usize,
    },
    /// An Ethernet or SLL frame of another protocol (e.g. 0x0806 ARP).
    EtherType(u16),
    /// An 802.3 frame with a length field instead of an EtherType (LLC/SNAP, STP, ...).
    Llc,
    /// A BSD loopback/NULL frame of another address family.
    Family(u32),
    /// A raw IP frame whose first nibble is neither 4 nor 6.
    IpVersion(u8),
    /// A link type this reader does not decode.
    LinkType(u32),
}

impl fmt::Display for NotIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotIp::ShortFrame { needed, have } => {
                write!(f, "frame of {have} bytes is shorter than its {needed}-byte link header")
            }
            NotIp::EtherType(0x0806) => f.write_str("ARP"),
            NotIp::EtherType(t) => write!(f, "ethertype 0x{t:04x}"),
            NotIp::Llc => f.write_str("802.3 LLC frame"),
            NotIp::Family(af) => write!(f, "address family {af}"),
            NotIp::IpVersion(v) => write!(f, "IP version {v}"),
            NotIp::LinkType(n) => write!(f, "link type {n} not decoded"),
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag, 802.1ad service tag, and the pre-standard QinQ tag.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn need(frame: &[u8], needed: usize) -> Result<(), NotIp> {
    if frame.len() < needed {
        Err(NotIp::ShortFrame { needed, have: frame.len() })
    } else {
        Ok(())
    }
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<&[u8], NotIp> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(rest),
        t => Err(NotIp::EtherType(t)),
    }
}

/// Strips the link-layer header of `frame` and returns the IP datagram it carries.
///
/// Bytes after the datagram (Ethernet padding) are left in place; the IP parser ignores them.
pub fn ip_payload(link: LinkType, frame: &[u8]) -> Result<&[u8], NotIp> {
    match link {
        LinkType::Ethernet => {
            need(frame, 14)?;
            let mut at = 12;
            let mut ethertype = be16(frame, at);
            while VLAN_TPIDS.contains(&ethertype) {
                // Each tag is TPID (already read) + 2 bytes of TCI, then the next type.
                need(frame, at + 8)?;
                at += 4;
                ethertype = be16(frame, at);
            }
            if ethertype < 0x0600 {
                return Err(NotIp::Llc);
            }
            by_ethertype(ethertype, &frame[at + 2..])
        }
        LinkType::RawIp => match frame.first().map(|b| b >> 4) {
            Some(4) | Some(6) => Ok(frame),
            Some(v) => Err(NotIp::IpVersion(v)),
            None => Err(NotIp::ShortFrame { needed: 1, have: 0 }),
        },
        LinkType::Ipv4 | LinkType::Ipv6 => Ok(frame),
        LinkType::Null | LinkType::Loop => {
            need(frame, 4)?;
            let word = [frame[0], frame[1], frame[2], frame[3]];
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(word)
            } else {
                // Host byte order of the capturing machine: a family never exceeds 16 bits,
                // so a value that does was written in the other order (as Wireshark decides).
                let le = u32::from_le_bytes(word);
                if le & 0xffff_0000 != 0 {
                    u32::from_be_bytes(word)
                } else {
                    le
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 on NetBSD/OpenBSD (24), FreeBSD (28), macOS (30).
                2 | 24 | 28 | 30 => Ok(&frame[4..]),
                af => Err(NotIp::Family(af)),
            }
        }
        LinkType::LinuxSll => {
            // packet type, ARPHRD type, address length, 8 address bytes, protocol.
            need(frame, 16)?;
            by_ethertype(be16(frame, 14), &frame[16..])
        }
        LinkType::LinuxSll2 => {
            // protocol, reserved, interface index, ARPHRD type, packet type, address length,
            // 8 address bytes.
            need(frame, 20)?;
            by_ethertype(be16(frame, 0), &frame[20..])
        }
        LinkType::Other(n) => Err(NotIp::LinkType(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 4] = [0x45, 0, 0, 20];

    fn eth(tags: &[u16], ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x07]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&IP);
        f
    }

    #[test]
    fn ethernet_untagged_and_with_stacked_vlan_tags_reach_ip() {
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100], &[0x9100, 0x8100, 0x8100]] {
            assert_eq!(ip_payload(LinkType::Ethernet, &eth(tags, 0x0800)), Ok(&IP[..]), "{tags:?}");
        }
    }

    #[test]
    fn ethernet_arp_and_llc_are_not_ip() {
        assert_eq!(ip_payload(LinkType::Ethernet, &eth(&[], 0x0806)), Err(NotIp::EtherType(0x0806)));
        assert_eq!(ip_payload(LinkType::Ethernet, &eth(&[0x8100], 0x0026)), Err(NotIp::Llc));
    }

    #[test]
    fn ethernet_cut_inside_a_vlan_tag_is_a_short_frame() {
        let f = eth(&[0x8100], 0x0800);
        assert_eq!(ip_payload(LinkType::Ethernet, &f[..15]), Err(NotIp::ShortFrame { needed: 20, have: 15 }));
        for len in 0..14 {
            assert!(ip_payload(LinkType::Ethernet, &f[..len]).is_err());
        }
    }

    #[test]
    fn null_family_in_either_byte_order() {
        for af in [2u32, 24, 28, 30] {
            for word in [af.to_le_bytes(), af.to_be_bytes()] {
                let mut f = word.to_vec();
                f.extend_from_slice(&IP);
                assert_eq!(ip_payload(LinkType::Null, &f), Ok(&IP[..]), "af {af}");
            }
        }
        let mut f = 7u32.to_le_bytes().to_vec();
        f.extend_from_slice(&IP);
        assert_eq!(ip_payload(LinkType::Null, &f), Err(NotIp::Family(7)));
    }

    #[test]
    fn sll_and_sll2_protocol_fields() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x86ddu16.to_be_bytes());
        sll.extend_from_slice(&IP);
        assert_eq!(ip_payload(LinkType::LinuxSll, &sll), Ok(&IP[..]));
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&IP);
        assert_eq!(ip_payload(LinkType::LinuxSll2, &sll2), Ok(&IP[..]));
        sll2[0..2].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(ip_payload(LinkType::LinuxSll2, &sll2), Err(NotIp::EtherType(0x0806)));
    }

    #[test]
    fn raw_ip_checks_the_version_nibble() {
        assert_eq!(ip_payload(LinkType::RawIp, &IP), Ok(&IP[..]));
        assert_eq!(ip_payload(LinkType::RawIp, &[0x20]), Err(NotIp::IpVersion(2)));
        assert_eq!(LinkType::from_number(12), LinkType::RawIp);
        assert_eq!(LinkType::from_number(14), LinkType::RawIp);
    }
}
