//! Which hash RFC 5929's `tls-server-end-point` channel binding takes for a server certificate:
//! the hash of the certificate's signature algorithm, SHA-256 in place of MD5 and SHA-1
//! (section 4.1). Read from the DER certificate's outer `signatureAlgorithm`.

use crate::der::Der;
use crate::DecodeError;

/// The hash to apply to the whole DER certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

// Content octets of the signature algorithm OIDs (RFC 3279, 4055, 5758, 8017).
const MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const SHA224_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
const SHA1_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const SHA256_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const SHA384_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const SHA512_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const SHA1_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
// Hash algorithms, as RSASSA-PSS parameters name them (NIST 2.16.840.1.101.3.4.2.x, SHA-1).
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// The hash for `certificate` (DER), or `None` when its signature uses a hash this client
/// does not know (SHA-224, ...): then no binding is sent, which a server at WinRM's default
/// `CbtHardeningLevel` accepts, where a wrong one would fail the logon. Ed25519, which RFC 5929
/// leaves undefined, gets SHA-256 as requests-ntlm and pyspnego give it.
pub fn end_point_hash(certificate: &[u8]) -> Result<Option<EndPointHash>, DecodeError> {
    let cert = Der::new(certificate).expect(0x30, "certificate")?;
    let mut fields = Der::new(cert);
    fields.expect(0x30, "tbsCertificate")?;
    let mut algorithm = Der::new(fields.expect(0x30, "signatureAlgorithm")?);
    let oid = algorithm.expect(0x06, "signature algorithm OID")?;
    Ok(match oid {
        MD5_RSA | SHA1_RSA | SHA256_RSA | SHA1_ECDSA | SHA256_ECDSA | SHA1_DSA | ED25519 => Some(EndPointHash::Sha256),
        SHA384_RSA | SHA384_ECDSA => Some(EndPointHash::Sha384),
        SHA512_RSA | SHA512_ECDSA => Some(EndPointHash::Sha512),
        SHA224_RSA => None,
        RSA_PSS => pss_hash(&mut algorithm)?,
        _ => None,
    })
}

/// RSASSA-PSS-params `[0] hashAlgorithm`, SHA-1 when absent (RFC 4055 section 3.1).
fn pss_hash(algorithm: &mut Der<'_>) -> Result<Option<EndPointHash>, DecodeError> {
    let mut hash = SHA1;
    if !algorithm.is_empty() {
        let mut params = Der::new(algorithm.expect(0x30, "RSASSA-PSS parameters")?);
        if !params.is_empty() {
            let (tag, content) = params.element("RSASSA-PSS parameter")?;
            if tag == 0xa0 {
                let mut identifier = Der::new(Der::new(content).expect(0x30, "hashAlgorithm")?);
                hash = identifier.expect(0x06, "hash OID")?;
            }
        }
    }
    Ok(match hash {
        SHA1 | SHA256 => Some(EndPointHash::Sha256),
        SHA384 => Some(EndPointHash::Sha384),
        SHA512 => Some(EndPointHash::Sha512),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_certificate_is_an_error() {
        assert!(end_point_hash(&[]).is_err());
        assert!(end_point_hash(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(end_point_hash(&[0x30, 0x84, 0, 0, 0, 1]).is_err());
    }
}
