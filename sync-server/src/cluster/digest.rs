//! The anti-entropy digest: every stored document's version, hashed into buckets and a root,
//! so that two nodes compare whole collections with one hash and find the few documents that
//! differ with a few messages.
//!
//! A document belongs to bucket `sha256(id)[0] % BUCKETS`. A bucket's hash is the XOR of its
//! entries' hashes (`sha256(id, version hash)`), so replacing one document's version costs two
//! XORs; the root is the SHA-256 of the bucket hashes. Hashes are SHA-256 truncated to 64 bits,
//! the same on every build and platform (a build-dependent hash would make every comparison
//! between two versions of the program differ).

use std::collections::BTreeMap;

use crdt_core::VersionVector;
use sha2::{Digest, Sha256};

/// Buckets of the digest (a differing bucket costs a list of its documents).
pub const BUCKETS: usize = 64;

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The hash of a version (of its canonical encoding: replicas sorted, counts above zero).
pub fn version_hash(version: &VersionVector) -> u64 {
    let mut bytes = Vec::with_capacity(version.len() * 24);
    for (replica, count) in version.iter() {
        bytes.extend_from_slice(&replica.as_u128().to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
    }
    hash64(&[&bytes])
}

/// The bucket a document belongs to.
pub fn bucket_of(doc: &str) -> usize {
    let digest = Sha256::digest(doc.as_bytes());
    usize::from(digest[0]) % BUCKETS
}

fn entry_hash(doc: &str, version_hash: u64) -> u64 {
    hash64(&[doc.as_bytes(), &version_hash.to_le_bytes()])
}

/// Every stored document of this node with the hash of its durable version.
///
/// ```
/// use crdt_core::{ReplicaId, VersionVector};
/// use sync_server::cluster::digest::{DigestIndex, version_hash};
///
/// let mut version = VersionVector::new();
/// version.increment(ReplicaId::from_u128(1));
/// let (mut here, mut there) = (DigestIndex::default(), DigestIndex::default());
/// here.set("notes", version_hash(&version));
/// assert_ne!(here.root(), there.root());
/// there.set("notes", version_hash(&version));
/// assert_eq!(here.root(), there.root());
/// ```
#[derive(Debug, Clone)]
pub struct DigestIndex {
    buckets: Vec<BTreeMap<String, u64>>,
    hashes: Vec<u64>,
}

impl Default for DigestIndex {
    fn default() -> Self {
        DigestIndex {
            buckets: vec![BTreeMap::new(); BUCKETS],
            hashes: vec![0; BUCKETS],
        }
    }
}

impl DigestIndex {
    /// Records a document's version hash (replacing the one it had).
    pub fn set(&mut self, doc: &str, version_hash: u64) {
        let bucket = bucket_of(doc);
        match self.buckets[bucket].insert(doc.to_owned(), version_hash) {
            Some(old) if old == version_hash => return,
            Some(old) => self.hashes[bucket] ^= entry_hash(doc, old),
            None => {}
        }
        self.hashes[bucket] ^= entry_hash(doc, version_hash);
    }

    /// Records a document's version hash unless it has one (a background scan must not
    /// overwrite what a live document recorded since).
    pub fn set_if_absent(&mut self, doc: &str, version_hash: u64) {
        if !self.buckets[bucket_of(doc)].contains_key(doc) {
            self.set(doc, version_hash);
        }
    }

    /// How many documents are indexed.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(BTreeMap::len).sum()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(BTreeMap::is_empty)
    }

    /// The root hash over every bucket.
    pub fn root(&self) -> u64 {
        let bytes: Vec<u8> = self.hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
        hash64(&[&bytes])
    }

    /// Each bucket's hash.
    pub fn bucket_hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// The documents of one bucket with their version hashes (empty for a bucket out of range).
    pub fn bucket(&self, bucket: usize) -> Vec<(String, u64)> {
        self.buckets
            .get(bucket)
            .map(|docs| docs.iter().map(|(d, h)| (d.clone(), *h)).collect())
            .unwrap_or_default()
    }

    /// The documents of `bucket` that differ between this index and `theirs` (the other node's
    /// list for that bucket): held by one side only, or at another version.
    pub fn differing(&self, bucket: usize, theirs: &[(String, u64)]) -> Vec<String> {
        let Some(mine) = self.buckets.get(bucket) else {
            return Vec::new();
        };
        let theirs: BTreeMap<&str, u64> = theirs.iter().map(|(d, h)| (d.as_str(), *h)).collect();
        let mut differing: Vec<String> = mine
            .iter()
            .filter(|(doc, hash)| theirs.get(doc.as_str()) != Some(hash))
            .map(|(doc, _)| doc.clone())
            .collect();
        differing.extend(
            theirs
                .keys()
                .filter(|doc| !mine.contains_key(**doc))
                .map(|doc| doc.to_string()),
        );
        differing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_depends_on_the_set_not_on_the_order_of_updates() {
        let (mut a, mut b) = (DigestIndex::default(), DigestIndex::default());
        for i in 0..200_u64 {
            a.set(&format!("doc-{i}"), i);
        }
        for i in (0..200_u64).rev() {
            b.set(&format!("doc-{i}"), 1000 + i);
            b.set(&format!("doc-{i}"), i);
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.len(), 200);
        b.set("doc-7", 8);
        assert_ne!(a.root(), b.root());
        let bucket = bucket_of("doc-7");
        let differing: Vec<usize> = (0..BUCKETS)
            .filter(|&k| a.bucket_hashes()[k] != b.bucket_hashes()[k])
            .collect();
        assert_eq!(differing, [bucket]);
        assert_eq!(a.differing(bucket, &b.bucket(bucket)), ["doc-7"]);
        b.set("new", 1);
        let bucket = bucket_of("new");
        assert!(
            a.differing(bucket, &b.bucket(bucket))
                .contains(&"new".to_string())
        );
        assert!(
            b.differing(bucket, &a.bucket(bucket))
                .contains(&"new".to_string())
        );
    }

    #[test]
    fn a_scan_never_overwrites_a_newer_entry() {
        let mut index = DigestIndex::default();
        index.set("d", 2);
        index.set_if_absent("d", 1);
        assert_eq!(index.bucket(bucket_of("d")), [("d".to_string(), 2)]);
    }

    #[test]
    fn version_hashes_are_fixed_across_builds() {
        let mut version = VersionVector::new();
        version.advance(crdt_core::ReplicaId::from_u128(5), 3);
        // Computed once; a change here means nodes of different builds never agree.
        assert_eq!(
            format!("{:016x}", version_hash(&VersionVector::new())),
            "7a0b81a1f57055af"
        );
        assert_eq!(
            format!("{:016x}", version_hash(&version)),
            "cfc62a6629132410"
        );
        assert_eq!(bucket_of("notes"), 43);
    }
}
