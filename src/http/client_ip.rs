//! Which address a request came from. Behind a reverse proxy every connection comes from the
//! proxy, so the client is taken from `X-Forwarded-For`, but only when the connecting peer is a
//! proxy the operator named (`trusted_proxies`): anyone else could write that header.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

/// The client's address: the peer, or behind a trusted proxy the client it names (`client_ip`).
pub(crate) fn client_address(
    state: &crate::http::AppState,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = peer.map(|addr| addr.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    client_ip(peer, headers, &state.settings().trusted_proxies)
}

/// The client's address: the peer itself, unless the peer is a trusted proxy; then the rightmost
/// address in `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it
/// saw, so everything left of the first untrusted hop is the client's own word and ignored).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| parse_hop(hop.trim()))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !trusted.contains(hop) {
            break;
        }
    }
    client
}

/// One hop: an address, possibly with a port (`203.0.113.7:4711`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.rsplit_once(':').and_then(|(ip, _port)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client_ip(ip("198.51.100.1"), &headers("203.0.113.7"), &trusted), ip("198.51.100.1"));
        let none = TrustedProxies::default();
        assert_eq!(client_ip(ip("127.0.0.1"), &headers("203.0.113.7"), &none), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let forged = headers("1.2.3.4, 203.0.113.7, 192.0.2.1");
        assert_eq!(client_ip(ip("10.1.1.1"), &forged, &trusted), ip("203.0.113.7"));
        assert_eq!(client_ip(ip("10.1.1.1"), &headers("[2001:db8::1]:443"), &trusted), ip("2001:db8::1"));
        assert_eq!(client_ip(ip("10.1.1.1"), &HeaderMap::new(), &trusted), ip("10.1.1.1"));
        assert_eq!(client_ip(ip("10.1.1.1"), &headers("garbage"), &trusted), ip("10.1.1.1"));
    }
}
