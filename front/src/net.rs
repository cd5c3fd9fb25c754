//! Client IP: the socket peer, or the X-Forwarded-For chain when (and only as far as) the peers are
//! configured trusted proxies.
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 range, `addr/prefix` or a single address (a host route), matched by `ipnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let net = match s.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) if !s.contains('/') => {
                s.parse::<IpAddr>().map(IpNet::from).map_err(|_| bad(s))?
            }
            Err(_) => return Err(bad(s)),
        };
        Ok(Cidr(net))
    }
}

fn bad(s: &str) -> String {
    format!("not an IP address or CIDR range: {s:?}")
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn trusted(proxies: &[Cidr], ip: IpAddr) -> bool {
    proxies.iter().any(|c| c.contains(ip))
}

/// The client's address. When the peer is a trusted proxy, X-Forwarded-For is read from the right:
/// the first address that is not a trusted proxy is the client. A malformed entry stops the walk
/// at the last address that could be trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    if proxies.is_empty() || !trusted(proxies, peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = canonical(ip);
        if !trusted(proxies, client) {
            return client;
        }
    }
    client
}

/// One X-Forwarded-For entry: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1` or `[2001:db8::1]:567`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(s: &str) -> Vec<Cidr> {
        s.split(',').map(|c| c.parse().unwrap()).collect()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.255.1.2".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.1.1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "abc",
            "10.0.0.0/",
            "::/129",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let peer = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("1.1.1.1"), &[]), peer);
        assert_eq!(client_ip(peer, &xff("1.1.1.1"), &cidrs("127.0.0.1")), peer);
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let proxies = cidrs("127.0.0.1,10.0.0.0/8");
        let peer = "127.0.0.1".parse().unwrap();
        let got = client_ip(peer, &xff("6.6.6.6, 198.51.100.7, 10.1.2.3"), &proxies);
        assert_eq!(got, "198.51.100.7".parse::<IpAddr>().unwrap());
        // A spoofed left-most entry is not believed.
        let got = client_ip(peer, &xff("1.2.3.4,198.51.100.7"), &proxies);
        assert_eq!(got, "198.51.100.7".parse::<IpAddr>().unwrap());
        // Ports and brackets.
        let got = client_ip(peer, &xff("[2001:db8::7]:443"), &proxies);
        assert_eq!(got, "2001:db8::7".parse::<IpAddr>().unwrap());
        let got = client_ip(peer, &xff("198.51.100.8:1234"), &proxies);
        assert_eq!(got, "198.51.100.8".parse::<IpAddr>().unwrap());
        // Garbage: stop at the last trusted hop.
        let got = client_ip(peer, &xff("198.51.100.7, garbage, 10.0.0.1"), &proxies);
        assert_eq!(got, "10.0.0.1".parse::<IpAddr>().unwrap());
        // No header: the proxy itself.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies), peer);
    }
}
