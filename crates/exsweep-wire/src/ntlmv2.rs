//! [MS-NLMP] NTLMv2 as a client: the AUTHENTICATE message with its MIC, the session keys, and
//! session security (sign and seal with extended session security, 128-bit, key exchange), as
//! WinRM needs it to seal message bodies. Everything random or timed (client challenge,
//! exported session key, timestamp) is a parameter, so the published vectors replay exactly.

use hmac::{KeyInit, Mac};
use md4::Digest;

use crate::ntlm::{self, Challenge, SIGNATURE};
use crate::DecodeError;

type HmacMd5 = hmac::Hmac<md5::Md5>;

pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;

/// The flags a WinRM client asks for: sealing needs sign, seal, key exchange, 128-bit and
/// extended session security ([MS-WSMV] 3.1.4.1.30; Windows refuses unsealed bodies).
pub const CLIENT_FLAGS: u32 = ntlm::NEGOTIATE_UNICODE
    | ntlm::REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | ntlm::NEGOTIATE_NTLM
    | ntlm::NEGOTIATE_ALWAYS_SIGN
    | ntlm::NEGOTIATE_EXTENDED_SESSIONSECURITY
    | ntlm::NEGOTIATE_TARGET_INFO
    | ntlm::NEGOTIATE_VERSION
    | ntlm::NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | ntlm::NEGOTIATE_56;

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    let out = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&out);
    bytes
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h.finalize());
    bytes
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// RC4, as NTLM uses it for key exchange and sealing (a keystream kept per direction).
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    pub fn new(key: &[u8]) -> Rc4 {
        let mut s = [0u8; 256];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i as u8;
        }
        let mut j: u8 = 0;
        for i in 0..256 {
            j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len().max(1)]);
            s.swap(i, j as usize);
        }
        Rc4 { s, i: 0, j: 0 }
    }

    pub fn apply(&mut self, data: &mut [u8]) {
        for b in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[self.i as usize]);
            self.s.swap(self.i as usize, self.j as usize);
            let k = self.s[(self.s[self.i as usize].wrapping_add(self.s[self.j as usize])) as usize];
            *b ^= k;
        }
    }
}

/// NTOWFv2 ([MS-NLMP] 3.3.2): HMAC-MD5 of the NT hash over the upper-cased user and the domain.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = md4::Md4::digest(utf16(password)).into();
    // Windows upper-cases character by character and never expands one into two (ß stays ß).
    let upper: String = user
        .chars()
        .map(|c| {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        })
        .collect();
    hmac_md5(&nt_hash, &[&utf16(&upper), &utf16(domain)])
}

/// The NEGOTIATE message a WinRM client sends: [`CLIENT_FLAGS`], no domain or workstation.
pub fn encode_negotiate() -> Vec<u8> {
    ntlm::encode_negotiate_with(CLIENT_FLAGS)
}

/// Who is logging on, and the values a real client draws at random (passed in).
pub struct AuthInput<'a> {
    pub user: &'a str,
    pub domain: &'a str,
    pub password: &'a str,
    pub workstation: &'a str,
    pub client_challenge: [u8; 8],
    pub exported_session_key: [u8; 16],
    /// FILETIME to use when the CHALLENGE carries no MsvAvTimestamp.
    pub fallback_time: u64,
    /// Add MsvAvFlags and a MIC (what Windows and exsweep do); off only to replay the
    /// [MS-NLMP] 4.2.4 example, which predates the MIC.
    pub with_mic: bool,
    /// Over TLS: the channel binding hash ([`channel_binding_hash`]) and the service principal
    /// name (`HTTP/host`), added to the target information the MIC protects, so the logon cannot
    /// be relayed to another TLS endpoint.
    pub channel_bindings: Option<[u8; 16]>,
    pub target_spn: Option<&'a str>,
}

/// MD5 of a `gss_channel_bindings_struct` with no addresses and `application_data` (for TLS:
/// `tls-server-end-point:` and the hash of the server's certificate, RFC 5929), as
/// MsvAvChannelBindings carries it ([MS-NLMP] 2.2.2.1).
pub fn channel_binding_hash(application_data: &[u8]) -> [u8; 16] {
    let mut bindings = vec![0u8; 16];
    bindings.extend_from_slice(&(application_data.len() as u32).to_le_bytes());
    bindings.extend_from_slice(application_data);
    md5(&[&bindings])
}

/// The AUTHENTICATE message and the keys of the session it opens.
pub struct Authenticated {
    pub message: Vec<u8>,
    /// NTProofStr and the session base key, for checking against published vectors.
    pub nt_proof: [u8; 16],
    pub session_base_key: [u8; 16],
    pub flags: u32,
    pub exported_session_key: [u8; 16],
}

/// The target information echoed in the NTLMv2 response, with MsvAvFlags saying a MIC is
/// present ([MS-NLMP] 3.1.5.1.2) placed before MsvAvEOL.
fn target_info_with_mic_flag(raw: &[u8], channel_bindings: Option<[u8; 16]>, spn: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    let mut at = 0;
    let mut flags_written = false;
    while at + 4 <= raw.len() {
        let id = u16::from_le_bytes([raw[at], raw[at + 1]]);
        let len = usize::from(u16::from_le_bytes([raw[at + 2], raw[at + 3]]));
        let end = (at + 4 + len).min(raw.len());
        match id {
            0 => break,
            // Ours replace any the server sent.
            9 | 10 => {}
            6 => {
                let old = raw
                    .get(at + 4..at + 8)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                out.extend_from_slice(&[6, 0, 4, 0]);
                out.extend_from_slice(&(old | 0x2).to_le_bytes());
                flags_written = true;
            }
            _ => out.extend_from_slice(&raw[at..end]),
        }
        at = end;
    }
    if !flags_written {
        out.extend_from_slice(&[6, 0, 4, 0, 2, 0, 0, 0]);
    }
    if let Some(hash) = channel_bindings {
        out.extend_from_slice(&[10, 0, 16, 0]);
        out.extend_from_slice(&hash);
    }
    if let Some(spn) = spn {
        let name = utf16(spn);
        out.extend_from_slice(&[9, 0]);
        out.extend_from_slice(&(name.len().min(0xFFFE) as u16).to_le_bytes());
        out.extend_from_slice(&name[..name.len().min(0xFFFE)]);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// Builds the AUTHENTICATE message for `challenge_message` (the raw CHALLENGE), answering the
/// `negotiate_message` this client sent ([MS-NLMP] 3.1.5.1.2).
pub fn authenticate(
    negotiate_message: &[u8],
    challenge_message: &[u8],
    input: &AuthInput<'_>,
) -> Result<Authenticated, DecodeError> {
    let challenge: Challenge = ntlm::decode_challenge(challenge_message)?;
    let flags = challenge.flags & CLIENT_FLAGS | ntlm::NEGOTIATE_UNICODE;
    let time = challenge.target_info.timestamp.unwrap_or(input.fallback_time);
    let key = ntowf_v2(input.password, input.user, input.domain);

    let mut temp = vec![1, 1, 0, 0, 0, 0, 0, 0];
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(&input.client_challenge);
    temp.extend_from_slice(&[0, 0, 0, 0]);
    let target_info = crate::ntlm::raw_target_info(challenge_message);
    if input.with_mic {
        temp.extend_from_slice(&target_info_with_mic_flag(
            target_info,
            input.channel_bindings,
            input.target_spn,
        ));
    } else {
        temp.extend_from_slice(target_info);
    }
    temp.extend_from_slice(&[0, 0, 0, 0]);
    let nt_proof = hmac_md5(&key, &[&challenge.server_challenge, &temp]);
    let mut nt_response = nt_proof.to_vec();
    nt_response.extend_from_slice(&temp);
    // With a server timestamp the LMv2 response is zeros ([MS-NLMP] 3.1.5.1.2).
    let lm_response = if challenge.target_info.timestamp.is_some() {
        vec![0u8; 24]
    } else {
        let mut lm = hmac_md5(&key, &[&challenge.server_challenge, &input.client_challenge]).to_vec();
        lm.extend_from_slice(&input.client_challenge);
        lm
    };
    let session_base_key = hmac_md5(&key, &[&nt_proof]);
    let (exported, encrypted_key) = if flags & NEGOTIATE_KEY_EXCH != 0 {
        let mut encrypted = input.exported_session_key;
        Rc4::new(&session_base_key).apply(&mut encrypted);
        (input.exported_session_key, encrypted.to_vec())
    } else {
        (session_base_key, Vec::new())
    };

    let domain = utf16(input.domain);
    let user = utf16(input.user);
    let workstation = utf16(input.workstation);
    let fields: [&[u8]; 6] = [&lm_response, &nt_response, &domain, &user, &workstation, &encrypted_key];
    const HEADER: usize = 88;
    let mut message = Vec::with_capacity(HEADER + fields.iter().map(|f| f.len()).sum::<usize>());
    message.extend_from_slice(SIGNATURE);
    message.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = HEADER;
    for f in fields {
        let len = u16::try_from(f.len()).map_err(|_| DecodeError::TooLong {
            what: "AUTHENTICATE field",
            len: f.len(),
            limit: u16::MAX as usize,
        })?;
        message.extend_from_slice(&len.to_le_bytes());
        message.extend_from_slice(&len.to_le_bytes());
        message.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += f.len();
    }
    message.extend_from_slice(&flags.to_le_bytes());
    message.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 15]);
    message.extend_from_slice(&[0u8; 16]); // MIC, filled below
    for f in fields {
        message.extend_from_slice(f);
    }
    if input.with_mic {
        let mic = hmac_md5(&exported, &[negotiate_message, challenge_message, &message]);
        message[72..88].copy_from_slice(&mic);
    }
    Ok(Authenticated {
        message,
        nt_proof,
        session_base_key,
        flags,
        exported_session_key: exported,
    })
}

/// Which way a sealer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// Session security for one direction ([MS-NLMP] 3.4.4, extended session security): its
/// signing key, its RC4 keystream and its sequence number, kept for the life of the
/// connection.
#[derive(Clone)]
pub struct Sealer {
    sign_key: [u8; 16],
    seal_key: [u8; 16],
    rc4: Rc4,
    seq: u32,
    key_exchange: bool,
}

impl Sealer {
    /// The sealer of `direction` for a session with `exported_session_key`.
    pub fn new(exported_session_key: &[u8; 16], direction: Direction, flags: u32) -> Sealer {
        let (sign_magic, seal_magic): (&[u8], &[u8]) = match direction {
            Direction::ClientToServer => (
                b"session key to client-to-server signing key magic constant\0",
                b"session key to client-to-server sealing key magic constant\0",
            ),
            Direction::ServerToClient => (
                b"session key to server-to-client signing key magic constant\0",
                b"session key to server-to-client sealing key magic constant\0",
            ),
        };
        let sign_key = md5(&[exported_session_key, sign_magic]);
        let seal_key = md5(&[exported_session_key, seal_magic]);
        Sealer {
            sign_key,
            seal_key,
            rc4: Rc4::new(&seal_key),
            seq: 0,
            key_exchange: flags & NEGOTIATE_KEY_EXCH != 0,
        }
    }

    pub fn sign_key(&self) -> [u8; 16] {
        self.sign_key
    }

    fn signature(&mut self, plaintext: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&hmac_md5(&self.sign_key, &[&seq, plaintext])[..8]);
        if self.key_exchange {
            self.rc4.apply(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq);
        self.seq = self.seq.wrapping_add(1);
        sig
    }

    /// Signs a message without sealing it (SPNEGO's mechListMIC).
    pub fn sign(&mut self, message: &[u8]) -> [u8; 16] {
        self.signature(message)
    }

    /// Checks the signature of a message that was signed, not sealed.
    pub fn verify(&mut self, message: &[u8], signature: &[u8]) -> Result<(), DecodeError> {
        if self.signature(message).as_slice() != signature {
            return Err(DecodeError::invalid(
                "NTLM signature",
                "does not match the message (tampered or out of sequence)",
            ));
        }
        Ok(())
    }

    /// Restarts the RC4 keystream, keeping the sequence number: what both sides do after a
    /// SPNEGO mechListMIC (pyspnego and Windows alike), so that sealing starts afresh.
    pub fn reset_keystream(&mut self) {
        self.rc4 = Rc4::new(&self.seal_key);
    }

    /// Seals a message: the sealed bytes (as long as the message) and its signature.
    pub fn seal(&mut self, plaintext: &[u8]) -> ([u8; 16], Vec<u8>) {
        let mut sealed = plaintext.to_vec();
        self.rc4.apply(&mut sealed);
        let sig = self.signature(plaintext);
        (sig, sealed)
    }

    /// Unseals a message and checks its signature; a wrong signature (tampering, a lost
    /// message, a key mismatch) is an error.
    pub fn unseal(&mut self, signature: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut plaintext = sealed.to_vec();
        self.rc4.apply(&mut plaintext);
        let expected = self.signature(&plaintext);
        if &expected != signature {
            return Err(DecodeError::invalid(
                "NTLM signature",
                "does not match the message (tampered or out of sequence)",
            ));
        }
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// [MS-NLMP] 4.2.4.1.1 NTOWFv2 of User / Domain / Password.
    #[test]
    fn ntowf_v2_matches_the_spec() {
        assert_eq!(
            ntowf_v2("Password", "User", "Domain").to_vec(),
            hex("0c868a403bfd7a93a3001ef22ef02e3f")
        );
    }

    /// RC4 test vector (RFC 6229 key 0x0102030405, first bytes of the keystream).
    #[test]
    fn rc4_keystream() {
        let mut data = [0u8; 8];
        Rc4::new(&[1, 2, 3, 4, 5]).apply(&mut data);
        assert_eq!(data.to_vec(), hex("b2396305f03dc027"));
    }

    #[test]
    fn sealing_round_trips_and_detects_tampering() {
        let key = [0x55u8; 16];
        let mut client = Sealer::new(&key, Direction::ClientToServer, CLIENT_FLAGS);
        let mut server_view = Sealer::new(&key, Direction::ClientToServer, CLIENT_FLAGS);
        let (sig, sealed) = client.seal(b"<s:Envelope/>");
        assert_eq!(server_view.unseal(&sig, &sealed).unwrap(), b"<s:Envelope/>");
        let (sig, mut sealed) = client.seal(b"second");
        sealed[0] ^= 1;
        assert!(server_view.unseal(&sig, &sealed).is_err());
    }
}
