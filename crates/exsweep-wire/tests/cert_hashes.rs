//! The channel-binding hash of certificates made by openssl with every common key and digest,
//! against what requests-ntlm (pywinrm's NTLM) picks for the same files
//! (tests/data/certs/make.sh writes both).

use exsweep_wire::certhash::{end_point_hash, EndPointHash};

#[test]
fn each_certificate_gets_the_hash_requests_ntlm_gives_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/certs");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let mut seen = 0;
    for line in expected.lines() {
        let (file, len) = line.split_once(' ').unwrap();
        let der = std::fs::read(dir.join(file)).unwrap();
        let ours = match end_point_hash(&der).unwrap() {
            Some(EndPointHash::Sha256) => 32,
            Some(EndPointHash::Sha384) => 48,
            Some(EndPointHash::Sha512) => 64,
            None => 0,
        };
        assert_eq!(ours.to_string(), len, "{file}");
        for cut in 0..der.len() {
            let _ = end_point_hash(&der[..cut]);
        }
        seen += 1;
    }
    assert_eq!(seen, 9);
}
