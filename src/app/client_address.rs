//! Which address a request comes from: one function ([`resolve`]) decides it
//! for everything that keeps or counts one — the log's metadata, token
//! records, the wrong-password throttles and the in-flight store's quotas.
//!
//! A forwarded header is a claim, and only a proxy the operator trusts
//! (`trusted_proxies`, loopback by default) may make it. Behind trusted
//! proxies the client is the nearest address in the `X-Forwarded-For` chain
//! that is not one of them — each proxy appends the address it saw, so the
//! entries to the left of the last untrusted one are the client's to write.
//! With `ignoreip` (auth2's switch) no header is read at all.

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxies whose forwarded headers are believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl Default for TrustedProxies {
    /// Loopback only (a proxy on this machine).
    fn default() -> Self {
        Self(loopback())
    }
}

/// 127.0.0.0/8 and ::1: the default trusted proxies.
pub fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|net| net.parse().ok()).collect()
}

/// Reads one `trusted_proxies` entry: an address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{entry:?} is not an address or a network (CIDR)"))
}

impl TrustedProxies {
    /// These networks trusted.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// What a request says of where it comes from: the connection's peer and
/// the forwarded headers' values (every `X-Forwarded-For` value in order,
/// and `X-Real-IP`), as the HTTP layer reads them.
pub struct Forwarded<'a> {
    pub peer: Option<IpAddr>,
    pub forwarded_for: Vec<&'a str>,
    pub real_ip: Option<&'a str>,
}

/// The client's address: the connection's peer, unless that peer is a
/// trusted proxy and `ignore_ip` is off — then the nearest `X-Forwarded-For`
/// entry that is not a trusted proxy (all of them trusted: the farthest),
/// else the proxy's `X-Real-IP`. A hop that is not an address ends the walk
/// at the last address vouched for. `None` only without a peer.
pub fn resolve(request: &Forwarded<'_>, trusted: &TrustedProxies, ignore_ip: bool) -> Option<IpAddr> {
    let peer = canonical(request.peer?);
    if ignore_ip || !trusted.trusts(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = request
        .forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    if hops.is_empty() {
        return Some(request.real_ip.and_then(hop_address).unwrap_or(peer));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(address) = hop_address(hop) else {
            break;
        };
        client = address;
        if !trusted.trusts(address) {
            break;
        }
    }
    Some(client)
}

/// An entry of a forwarded header as an address: `1.2.3.4`, `1.2.3.4:80`,
/// `2001:db8::1`, `[2001:db8::1]:80`; anything else (`unknown`, a name) is none.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let address = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).and_then(|h| h.parse().ok()))?;
    Some(canonical(address))
}

/// An IPv4 address carried as IPv6 (`::ffff:1.2.3.4`, a dual-stack socket's) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whom a bound on unauthenticated state counts an address against: an IPv4
/// address itself, an IPv6 address by its /64 (one subscriber's usual
/// allocation), `unknown` without one.
pub fn quota_key(client: Option<IpAddr>) -> String {
    match client {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

/// The network a quota key's address belongs to, for the quota above the
/// address's: an IPv4 address's /24, an IPv6 /64's /48; any other key is its own.
pub fn network_key(quota: &str) -> String {
    if let Ok(v4) = quota.parse::<std::net::Ipv4Addr>() {
        let [a, b, c, _] = v4.octets();
        return format!("{a}.{b}.{c}.0/24");
    }
    match quota.strip_suffix("/64").and_then(|a| a.parse::<std::net::Ipv6Addr>().ok()) {
        Some(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        None => quota.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    fn resolved(peer: &str, pairs: &[(&str, &str)], trusted: &TrustedProxies, ignore_ip: bool) -> String {
        let forwarded_for = pairs.iter().filter(|(n, _)| *n == "x-forwarded-for").map(|(_, v)| *v).collect();
        let real_ip = pairs.iter().find(|(n, _)| *n == "x-real-ip").map(|(_, v)| *v);
        let request = Forwarded { peer: ip(peer), forwarded_for, real_ip };
        resolve(&request, trusted, ignore_ip).map(|a| a.to_string()).unwrap_or_default()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::default();
        let claims = [("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")];
        assert_eq!(resolved("203.0.113.7", &claims, &trusted, false), "203.0.113.7");
        // Private addresses are not trusted unless listed.
        assert_eq!(resolved("10.0.0.2", &claims, &trusted, false), "10.0.0.2");
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted =
            TrustedProxies::new(vec![parse_proxy("10.0.0.0/8").expect("net"), parse_proxy("::1").expect("net")]);
        // The client wrote the first entry; the proxy appended what it saw.
        let chain = [("x-forwarded-for", "1.2.3.4, 198.51.100.9")];
        assert_eq!(resolved("10.0.0.2", &chain, &trusted, false), "198.51.100.9");
        // Two proxies: the inner one's entry is skipped.
        let two = [("x-forwarded-for", "1.2.3.4, 198.51.100.9, 10.0.0.3")];
        assert_eq!(resolved("10.0.0.2", &two, &trusted, false), "198.51.100.9");
        // Several headers are one chain, in order.
        let split = [("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "198.51.100.9:5555")];
        assert_eq!(resolved("10.0.0.2", &split, &trusted, false), "198.51.100.9");
        // Every hop trusted: the farthest.
        assert_eq!(resolved("10.0.0.2", &[("x-forwarded-for", "10.1.1.1")], &trusted, false), "10.1.1.1");
        // A hop that is no address ends the walk at the last one vouched for.
        let garbage = [("x-forwarded-for", "198.51.100.9, garbage")];
        assert_eq!(resolved("10.0.0.2", &garbage, &trusted, false), "10.0.0.2");
        // Without a chain, the proxy's X-Real-IP; IPv6 hops in brackets.
        assert_eq!(resolved("::1", &[("x-real-ip", "[2001:db8::5]:80")], &trusted, false), "2001:db8::5");
        assert_eq!(resolved("10.0.0.2", &[], &trusted, false), "10.0.0.2");
    }

    #[test]
    fn ignore_ip_reads_no_header() {
        let trusted = TrustedProxies::default();
        assert_eq!(resolved("127.0.0.1", &[("x-forwarded-for", "198.51.100.1")], &trusted, false), "198.51.100.1");
        assert_eq!(resolved("127.0.0.1", &[("x-forwarded-for", "198.51.100.1")], &trusted, true), "127.0.0.1");
        assert_eq!(resolved("::ffff:127.0.0.1", &[("x-real-ip", "198.51.100.3")], &trusted, true), "127.0.0.1");
    }

    #[test]
    fn quotas_count_ipv6_by_its_64() {
        assert_eq!(quota_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(quota_key(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(quota_key(None), "unknown");
        assert_eq!(network_key("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(network_key("2001:db8:1:2::/64"), "2001:db8:1::/48");
        assert_eq!(network_key("unknown"), "unknown");
        assert_eq!(parse_proxy("10.1.2.3/8").map(|n| n.to_string()), Ok("10.0.0.0/8".to_owned()));
        assert!(parse_proxy("nginx").is_err());
    }
}
