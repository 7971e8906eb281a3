//! DNSSEC keys: generation (ring), the DNSKEY/DS/CDS/CDNSKEY records they
//! imply, and the in-memory signing key. Private key bytes are PKCS#8; the
//! keyring seals them before the store sees them and opens them before they
//! reach this type, where they stay.

use std::fmt;
use std::sync::{Arc, OnceLock};

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSSECRData, CDNSKEY, CDS, DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, SigningKey, Verifier, TBS};
use hickory_proto::rr::{Name, RData, Record};
use rustls_pki_types::PrivatePkcs8KeyDer;

/// A key algorithm pdm can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (13): the default, widest validator support.
    Ecdsap256sha256,
    /// Ed25519 (15): smaller, faster signatures.
    Ed25519,
}

impl KeyAlgorithm {
    /// The IANA algorithm number.
    pub fn number(self) -> u8 {
        match self {
            KeyAlgorithm::Ecdsap256sha256 => 13,
            KeyAlgorithm::Ed25519 => 15,
        }
    }

    /// From the IANA number.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            13 => Some(KeyAlgorithm::Ecdsap256sha256),
            15 => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// Parses `ecdsap256sha256`/`13` or `ed25519`/`15`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ecdsap256sha256" | "ecdsa" | "13" => Some(KeyAlgorithm::Ecdsap256sha256),
            "ed25519" | "15" => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// The hickory algorithm.
    pub fn hickory(self) -> Algorithm {
        match self {
            KeyAlgorithm::Ecdsap256sha256 => Algorithm::ECDSAP256SHA256,
            KeyAlgorithm::Ed25519 => Algorithm::ED25519,
        }
    }

    /// The lowercase mnemonic.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ecdsap256sha256 => "ecdsap256sha256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Combined signing key: signs everything; flags 257.
    Csk,
    /// Key-signing key: signs the apex key RRsets; flags 257.
    Ksk,
    /// Zone-signing key: signs everything else; flags 256.
    Zsk,
}

impl KeyRole {
    /// DNSKEY flags for this role (ZONE, plus SEP for CSK/KSK).
    pub fn flags(self) -> u16 {
        match self {
            KeyRole::Csk | KeyRole::Ksk => 257,
            KeyRole::Zsk => 256,
        }
    }

    /// Parses `csk`, `ksk` or `zsk`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csk" => Some(KeyRole::Csk),
            "ksk" => Some(KeyRole::Ksk),
            "zsk" => Some(KeyRole::Zsk),
            _ => None,
        }
    }

    /// The lowercase mnemonic.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Csk => "csk",
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
        }
    }
}

/// Why key material could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// ring could not generate a key.
    #[error("cannot generate a {0} key")]
    Generate(&'static str),
    /// The stored PKCS#8 does not parse as a key of the stated algorithm.
    #[error("stored {0} key material is not a valid key")]
    Parse(&'static str),
    /// DNSKEY/DS encoding failed.
    #[error("cannot encode key record: {0}")]
    Encode(String),
}

/// Generates a new private key (PKCS#8 DER) for `alg`.
pub fn generate(alg: KeyAlgorithm) -> Result<Vec<u8>, KeyError> {
    let der = match alg {
        KeyAlgorithm::Ecdsap256sha256 => EcdsaSigningKey::generate_pkcs8(alg.hickory()),
        KeyAlgorithm::Ed25519 => Ed25519SigningKey::generate_pkcs8(),
    }
    .map_err(|_| KeyError::Generate(alg.as_str()))?;
    Ok(der.secret_pkcs8_der().to_vec())
}

/// A new key: its PKCS#8 document and the key, whose private half is parsed
/// at its first signature.
///
/// Parsing a P-256 key recomputes its public point, a scalar multiplication
/// as costly as generating it (3 % of a pool commit's CPU); ring's PKCS#8
/// documents carry the public key already, so it is read from there. The
/// first signature parses the private half and checks it against this
/// DNSKEY ([`ZoneKey::from_pkcs8_lazy`]).
pub fn generate_key(alg: KeyAlgorithm, role: KeyRole) -> Result<(Vec<u8>, ZoneKey), KeyError> {
    let pkcs8 = generate(alg)?;
    let key = match public_key_of(alg, &pkcs8) {
        Some(public) => {
            let dnskey = DNSKEY::with_flags(
                role.flags(),
                hickory_proto::dnssec::PublicKeyBuf::new(public.to_vec(), alg.hickory()),
            );
            ZoneKey::from_pkcs8_lazy(alg, role, dnskey, pkcs8.clone())?
        }
        None => ZoneKey::from_pkcs8(alg, role, &pkcs8)?,
    };
    Ok((pkcs8, key))
}

/// The DNSKEY public key field carried at the end of a PKCS#8 document as
/// ring writes them, or `None` for any other layout.
///
/// P-256 (RFC 5915 inside RFC 5208): the ECPrivateKey ends with
/// `[1] { BIT STRING 0x04 || X || Y }`, and DNSKEY holds X || Y (RFC 6605).
/// Ed25519 (RFC 8410, PKCS#8 v2): the document ends with the implicitly
/// tagged `[1] publicKey` bit string (`81 21 00` + 32 bytes), and DNSKEY
/// holds the 32 bytes (RFC 8080).
fn public_key_of(alg: KeyAlgorithm, pkcs8: &[u8]) -> Option<&[u8]> {
    let (prefix, len): (&[u8], usize) = match alg {
        KeyAlgorithm::Ecdsap256sha256 => (&[0xa1, 0x44, 0x03, 0x42, 0x00, 0x04], 64),
        KeyAlgorithm::Ed25519 => (&[0x81, 0x21, 0x00], 32),
    };
    let start = pkcs8.len().checked_sub(len)?;
    let head = pkcs8.get(start.checked_sub(prefix.len())?..start)?;
    (head == prefix).then(|| &pkcs8[start..])
}

/// A key ready to sign: the private half in memory, the DNSKEY it publishes.
pub struct ZoneKey {
    role: KeyRole,
    algorithm: KeyAlgorithm,
    dnskey: DNSKEY,
    tag: u16,
    signer: KeySigner,
}

/// The private half, parsed at once or at the first signature.
enum KeySigner {
    Ready(Arc<dyn SigningKey>),
    /// Parsing a P-256 key costs ~18 us (the public point is recomputed);
    /// 100k zones at start-up would pay 1.8 s for keys most of them never
    /// use before the signature cache is warm. Kept as PKCS#8 until then.
    Lazy {
        pkcs8: Box<[u8]>,
        parsed: OnceLock<Result<Arc<dyn SigningKey>, KeyError>>,
    },
}

impl fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private half.
        f.debug_struct("ZoneKey")
            .field("role", &self.role)
            .field("algorithm", &self.algorithm)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl ZoneKey {
    /// Loads a key from its PKCS#8 bytes.
    pub fn from_pkcs8(alg: KeyAlgorithm, role: KeyRole, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let der = PrivatePkcs8KeyDer::from(pkcs8);
        let signer: Arc<dyn SigningKey> = match alg {
            KeyAlgorithm::Ecdsap256sha256 => Arc::new(
                EcdsaSigningKey::from_pkcs8(&der, alg.hickory())
                    .map_err(|_| KeyError::Parse(alg.as_str()))?,
            ),
            KeyAlgorithm::Ed25519 => Arc::new(
                Ed25519SigningKey::from_pkcs8(&der).map_err(|_| KeyError::Parse(alg.as_str()))?,
            ),
        };
        Self::from_signing_key(alg, role, signer)
    }

    /// A key whose DNSKEY is known (as stored) and whose PKCS#8 private
    /// half is parsed at its first signature. The DNSKEY must be the one
    /// the private half publishes: the store binds the two (the sealed
    /// private key authenticates its DNSKEY), and the first signature
    /// checks it again, refusing to sign with a key that does not match.
    pub fn from_pkcs8_lazy(
        alg: KeyAlgorithm,
        role: KeyRole,
        dnskey: DNSKEY,
        pkcs8: Vec<u8>,
    ) -> Result<Self, KeyError> {
        if dnskey.algorithm() != alg.hickory() || dnskey.flags() != role.flags() {
            return Err(KeyError::Parse(alg.as_str()));
        }
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self {
            role,
            algorithm: alg,
            dnskey,
            tag,
            signer: KeySigner::Lazy {
                pkcs8: pkcs8.into_boxed_slice(),
                parsed: OnceLock::new(),
            },
        })
    }

    /// The parsed private half (parsing it on first use).
    fn signing_key(&self) -> Result<&Arc<dyn SigningKey>, KeyError> {
        match &self.signer {
            KeySigner::Ready(k) => Ok(k),
            KeySigner::Lazy { pkcs8, parsed } => parsed
                .get_or_init(|| {
                    let k = Self::from_pkcs8(self.algorithm, self.role, pkcs8)?;
                    if k.dnskey != self.dnskey {
                        return Err(KeyError::Parse(self.algorithm.as_str()));
                    }
                    match k.signer {
                        KeySigner::Ready(s) => Ok(s),
                        KeySigner::Lazy { .. } => Err(KeyError::Parse(self.algorithm.as_str())),
                    }
                })
                .as_ref()
                .map_err(Clone::clone),
        }
    }

    /// Wraps an already-built signer (tests load RFC example keys this way).
    pub(super) fn from_signing_key(
        alg: KeyAlgorithm,
        role: KeyRole,
        signer: Arc<dyn SigningKey>,
    ) -> Result<Self, KeyError> {
        let public = signer
            .to_public_key()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let dnskey = DNSKEY::with_flags(role.flags(), public);
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self {
            role,
            algorithm: alg,
            dnskey,
            tag,
            signer: KeySigner::Ready(signer),
        })
    }

    /// The key's role.
    pub fn role(&self) -> KeyRole {
        self.role
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key tag (RFC 4034 Appendix B).
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// The DNSKEY rdata this key publishes.
    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// Signs to-be-signed data.
    pub fn sign(&self, tbs: &TBS) -> Result<Vec<u8>, String> {
        self.signing_key()
            .map_err(|e| e.to_string())?
            .sign(tbs)
            .map_err(|e| e.to_string())
    }

    /// The public key bytes (DNSKEY public key field).
    pub fn public_bytes(&self) -> &[u8] {
        self.dnskey.public_key().public_bytes()
    }
}

/// The DS rdata for `dnskey` at `owner` with `digest`.
pub fn ds_for(owner: &Name, dnskey: &DNSKEY, digest: DigestType) -> Result<DS, KeyError> {
    let tag = dnskey
        .calculate_key_tag()
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    let d = dnskey
        .to_digest(owner, digest)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(DS::new(
        tag,
        dnskey.algorithm(),
        digest,
        d.as_ref().to_vec(),
    ))
}

/// The apex key records a zone publishes for `published` keys: DNSKEY for
/// each, and CDS (SHA-256) + CDNSKEY for each SEP key in `sep_for_parent`
/// (RFC 7344: what the parent should hold).
pub fn apex_key_records(
    origin: &Name,
    ttl: u32,
    published: &[&DNSKEY],
    sep_for_parent: &[&DNSKEY],
) -> Result<Vec<Record>, KeyError> {
    let mut out = Vec::new();
    for k in published {
        out.push(Record::from_rdata(
            origin.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::DNSKEY((*k).clone())),
        ));
    }
    for k in sep_for_parent {
        let ds = ds_for(origin, k, DigestType::SHA256)?;
        out.push(Record::from_rdata(
            origin.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::CDS(CDS::new(
                ds.key_tag(),
                Some(ds.algorithm()),
                ds.digest_type(),
                ds.digest().to_vec(),
            ))),
        ));
        out.push(Record::from_rdata(
            origin.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::CDNSKEY(CDNSKEY::new(
                k.zone_key(),
                k.secure_entry_point(),
                k.revoke(),
                Some(k.algorithm()),
                k.public_key().public_bytes().to_vec(),
            ))),
        ));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_lazy_key_signs_like_the_key_and_refuses_a_dnskey_it_does_not_own() {
        let alg = KeyAlgorithm::Ecdsap256sha256;
        let der = generate(alg).unwrap();
        let eager = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &der).unwrap();
        let lazy = ZoneKey::from_pkcs8_lazy(alg, KeyRole::Csk, eager.dnskey().clone(), der.clone())
            .unwrap();
        assert_eq!(lazy.tag(), eager.tag());
        let tbs = TBS::from(&b"to be signed"[..]);
        let sig = lazy.sign(&tbs).unwrap();
        let public = eager.dnskey().public_key();
        assert!(public.verify(tbs.as_ref(), &sig).is_ok());

        let other = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap();
        let wrong =
            ZoneKey::from_pkcs8_lazy(alg, KeyRole::Csk, other.dnskey().clone(), der.clone())
                .unwrap();
        assert!(
            wrong.sign(&tbs).is_err(),
            "signed for a DNSKEY it does not own"
        );
        let zsk_flags = ZoneKey::from_pkcs8_lazy(alg, KeyRole::Zsk, eager.dnskey().clone(), der);
        assert!(zsk_flags.is_err(), "a CSK's DNSKEY is not a ZSK's");
    }

    #[test]
    fn generated_keys_load_and_have_stable_tags() {
        for alg in [KeyAlgorithm::Ecdsap256sha256, KeyAlgorithm::Ed25519] {
            let der = generate(alg).unwrap();
            let a = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &der).unwrap();
            let b = ZoneKey::from_pkcs8(alg, KeyRole::Csk, &der).unwrap();
            assert_eq!(a.tag(), b.tag());
            assert_eq!(a.dnskey().flags(), 257);
            assert_eq!(a.dnskey().algorithm(), alg.hickory());
            assert!(!format!("{a:?}").contains(&hex::encode(&der)));
        }
    }

    #[test]
    fn garbage_key_material_is_an_error() {
        assert!(ZoneKey::from_pkcs8(KeyAlgorithm::Ed25519, KeyRole::Zsk, b"nope").is_err());
    }

    fn b64(s: &str) -> Vec<u8> {
        data_encoding::BASE64.decode(s.as_bytes()).unwrap()
    }

    /// RFC 8080 §6.1: the Ed25519 example key gives the RFC's DNSKEY and DS.
    pub(crate) fn rfc8080_key() -> ZoneKey {
        let seed = b64("ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=");
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        ZoneKey::from_signing_key(
            KeyAlgorithm::Ed25519,
            KeyRole::Csk,
            Arc::new(Ed25519SigningKey::from_ed25519(pair)),
        )
        .unwrap()
    }

    #[test]
    fn rfc8080_ed25519_dnskey_and_ds() {
        let k = rfc8080_key();
        assert_eq!(
            data_encoding::BASE64.encode(k.public_bytes()),
            "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="
        );
        assert_eq!(k.tag(), 3613);
        let ds = ds_for(
            &Name::from_ascii("example.com.").unwrap(),
            k.dnskey(),
            DigestType::SHA256,
        )
        .unwrap();
        assert_eq!(
            hex::encode(ds.digest()),
            "3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b"
        );
    }

    /// RFC 6605 §6.1: the P-256 example key gives the RFC's DNSKEY and DS.
    #[test]
    fn rfc6605_p256_dnskey_and_ds() {
        let private = b64("GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=");
        let public = b64(
            "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==",
        );
        let mut uncompressed = vec![4u8];
        uncompressed.extend_from_slice(&public);
        let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &private,
            &uncompressed,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let k = ZoneKey::from_signing_key(
            KeyAlgorithm::Ecdsap256sha256,
            KeyRole::Csk,
            Arc::new(EcdsaSigningKey::from_ecdsa(
                pair,
                Algorithm::ECDSAP256SHA256,
            )),
        )
        .unwrap();
        assert_eq!(k.tag(), 55648);
        let ds = ds_for(
            &Name::from_ascii("example.net.").unwrap(),
            k.dnskey(),
            DigestType::SHA256,
        )
        .unwrap();
        assert_eq!(
            hex::encode(ds.digest()),
            "b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17"
        );
    }

    /// RFC 4034 §5.4 example: DS of dskey.example.com. key tag 60485 (SHA-1
    /// there); we check our DS path against the same DNSKEY with SHA-256 as
    /// computed by `ldns-key2ds -2` (digest below).
    #[test]
    #[allow(deprecated)] // RFC 4509's example key is RSASHA1
    fn ds_matches_rfc4509_example() {
        // RFC 4509 §2.3: dskey.example.com. DNSKEY 256 3 5 AQOeiiR0... → DS 60485 5 2 D4B7D520...
        let b64 = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";
        let bytes = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
        let key = DNSKEY::with_flags(
            256,
            hickory_proto::dnssec::PublicKeyBuf::new(bytes, Algorithm::RSASHA1),
        );
        let owner = Name::from_ascii("dskey.example.com.").unwrap();
        let ds = ds_for(&owner, &key, DigestType::SHA256).unwrap();
        assert_eq!(ds.key_tag(), 60485);
        assert_eq!(
            hex::encode_upper(ds.digest()),
            "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
        );
    }

    #[test]
    fn a_generated_key_publishes_what_its_private_half_parses_to() {
        for alg in [KeyAlgorithm::Ecdsap256sha256, KeyAlgorithm::Ed25519] {
            for role in [KeyRole::Csk, KeyRole::Zsk] {
                for _ in 0..8 {
                    let (pkcs8, key) = generate_key(alg, role).unwrap();
                    assert!(
                        public_key_of(alg, &pkcs8).is_some(),
                        "{alg:?}: ring's layout"
                    );
                    let parsed = ZoneKey::from_pkcs8(alg, role, &pkcs8).unwrap();
                    assert_eq!(key.dnskey(), parsed.dnskey(), "{alg:?}");
                    assert_eq!(key.tag(), parsed.tag());
                    // The private half parses at the first signature and
                    // matches the published key.
                    assert!(key.signing_key().is_ok());
                }
            }
        }
        // Another layout is not guessed at.
        let (pkcs8, _) = generate_key(KeyAlgorithm::Ecdsap256sha256, KeyRole::Csk).unwrap();
        assert!(public_key_of(KeyAlgorithm::Ed25519, &pkcs8).is_none());
        assert!(public_key_of(KeyAlgorithm::Ecdsap256sha256, &pkcs8[..pkcs8.len() - 1]).is_none());
    }
}
