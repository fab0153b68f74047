//! Simulated durable storage: a snapshot and a log of updates, with writes that reach the
//! disk only when synced. A crash loses what was written but not yet synced.

/// One node's disk for one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disk {
    snapshot: Option<Vec<u8>>,
    log: Vec<Vec<u8>>,
    unsynced: Vec<Vec<u8>>,
    syncs: u64,
}

impl Disk {
    /// Appends a record to the log (buffered until [`sync`](Self::sync)).
    pub fn append(&mut self, record: Vec<u8>) {
        self.unsynced.push(record);
    }

    /// Makes every appended record durable (an fsync).
    pub fn sync(&mut self) {
        if !self.unsynced.is_empty() {
            self.log.append(&mut self.unsynced);
            self.syncs += 1;
        }
    }

    /// True if records wait for [`sync`](Self::sync).
    pub fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// Replaces snapshot and log with a new snapshot, durably and atomically (write a new
    /// file, fsync, rename).
    pub fn compact(&mut self, snapshot: Vec<u8>) {
        self.snapshot = Some(snapshot);
        self.log.clear();
        self.unsynced.clear();
        self.syncs += 1;
    }

    /// The process died: unsynced writes are lost.
    pub fn crash(&mut self) {
        self.unsynced.clear();
    }

    /// What a restarting process reads: the last snapshot and the durable log after it.
    pub fn contents(&self) -> (Option<&[u8]>, &[Vec<u8>]) {
        (self.snapshot.as_deref(), &self.log)
    }

    /// Durable bytes (snapshot plus log).
    pub fn durable_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len) + self.log.iter().map(Vec::len).sum::<usize>()
    }

    /// How many times records were made durable.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Loses the durable log, keeping only the snapshot: disk corruption, for tests that
    /// check the checker notices lost changes.
    pub fn corrupt_log(&mut self) {
        self.log.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Disk;

    #[test]
    fn a_crash_loses_only_unsynced_writes() {
        let mut disk = Disk::default();
        disk.append(vec![1]);
        disk.sync();
        disk.append(vec![2]);
        disk.crash();
        assert_eq!(disk.contents(), (None, &[vec![1]][..]));
        disk.compact(vec![9]);
        disk.append(vec![3]);
        disk.sync();
        assert_eq!(disk.contents(), (Some(&[9][..]), &[vec![3]][..]));
    }
}
