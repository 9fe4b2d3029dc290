//! Power loss under the metadata store: redb over a storage backend that loses what was not
//! synced (issue 16, item 8).
//!
//! `LocalDrive` keeps its metadata in redb and commits it by group commit
//! (`src/group_commit.rs`): one write transaction with `Durability::Immediate` holding several
//! callers' batches, each caller answered `Ok` only after that transaction committed; after an
//! I/O error the store is closed and reopened (`src/meta_db.rs`), and commits go on. Those
//! modules are private to the crate, so this test reproduces their transaction pattern
//! faithfully (the same table definitions, `&[u8]` keys and values, lazy table opening per
//! transaction, one transaction per group, reopen after a failed commit) over
//! `redb::Builder::create_with_backend`.
//!
//! The backend (`CrashBackend`) keeps the *live* file (what the process reads) and the
//! *durable* image (what `sync_data` made durable), plus the pages written since the last
//! sync. Every write, `set_len` and sync is one I/O; at the I/O chosen for the run the power
//! goes: that call and all later ones fail. What is on the disk afterwards is the durable image
//! plus, for every page written since the last sync, a coin: the old page, the new page, or the
//! page torn at 512-byte sector boundaries (each sector old or new), and the new or old file
//! length. redb assumes only that single bytes are written atomically and that a sync makes
//! writes durable (its `docs/design.md`), so every such outcome is one it must survive. Some
//! runs also meet one transient I/O error first, which fails that commit, after which the store
//! is reopened as `MetaDb::reopen` does and work goes on.
//!
//! After the cut the store is opened on what survived (redb repairs it), and its contents must
//! equal the state after some prefix of the transactions: every transaction acknowledged
//! (commit returned `Ok`) is there, at most the one in flight at the cut is there too, a
//! transaction that failed with a transient error is there entirely or not at all, and no batch
//! is half there. The store must then take a new commit.
//!
//! **What this proves:** the metadata store's commit discipline (Immediate durability, batches
//! inside one transaction, reopen after a failure) keeps `meta_commit`'s promise under power
//! loss at a thousand seeded crash points, with torn pages.
//!
//! **What it does not prove:** anything about shard files (their fsync, rename and `syncfs`
//! discipline on a real filesystem is not exercised), about `LocalDrive`'s own code (the
//! pattern is reproduced, not called), or about a page persisted in an intermediate state
//! between two unsynced writes of it (only old, new or torn between the two).
//!
//! Replay: a failure prints `STRATA_META_CRASH_REPLAY=<seed>:<cut>`, which runs only that
//! run, exactly (one thread, every choice from the seed).
//! `STRATA_META_CRASH_SEED` and `STRATA_META_CRASH_RUNS` change the master seed and the count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition, WriteTransaction};
use strata_drive::Table;

const RUNS_DEFAULT: u64 = 1000;
const SEED_DEFAULT: u64 = 0x00c0_ffee_d15c;
const PAGE_BYTES: usize = 4096;
const SECTOR_BYTES: usize = 512;
/// Transactions (groups) per run, batches per group, operations per batch.
const TXNS_PER_RUN: usize = 20;
const BATCHES_PER_TXN_MAX: u64 = 6;
const OPS_PER_BATCH_MAX: u64 = 4;
/// The tables the workload writes (a few of the drive's, by their on-drive names).
const TABLES: [Table; 3] = [Table::Objects, Table::InlineData, Table::Parts];

// ------------------------------------------------------------------------- randomness

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, seeded, good enough for test choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ------------------------------------------------------------------------- the medium

/// The file as the process sees it and as the disk holds it.
#[derive(Debug, Default)]
struct Medium {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Pages written since the last sync, and whether the length changed since then.
    dirty: BTreeSet<usize>,
    len_dirty: bool,
    /// I/O calls so far (writes, `set_len`, syncs).
    n_ios: u64,
    /// The power goes at this I/O.
    cut_at_io: u64,
    cut: bool,
    /// One I/O that fails without a power cut (a transient error).
    fail_once_at_io: Option<u64>,
}

impl Medium {
    fn new(cut_at_io: u64) -> Medium {
        Medium {
            cut_at_io,
            ..Medium::default()
        }
    }

    /// Counts one I/O that changes or syncs the file.
    fn io(&mut self) -> io::Result<()> {
        self.n_ios += 1;
        if self.n_ios > self.cut_at_io {
            self.cut = true;
        }
        if self.cut {
            return Err(io::Error::other("power cut"));
        }
        if self.fail_once_at_io == Some(self.n_ios) {
            return Err(io::Error::other("transient I/O error"));
        }
        Ok(())
    }

    fn sync(&mut self) {
        self.durable.resize(self.live.len(), 0);
        for page in std::mem::take(&mut self.dirty) {
            let range = page * PAGE_BYTES..((page + 1) * PAGE_BYTES).min(self.live.len());
            if range.start < range.end {
                self.durable[range.clone()].copy_from_slice(&self.live[range]);
            }
        }
        self.len_dirty = false;
    }

    /// What the disk holds when it comes back: the durable image, and for every page written
    /// since the last sync the old page, the new one, or one torn between them at sectors.
    fn after_power_loss(&self, rng: &mut Rng) -> Vec<u8> {
        let len = if self.len_dirty && rng.below(2) == 0 {
            self.live.len()
        } else {
            self.durable.len()
        };
        let mut image = self.durable.clone();
        image.resize(len, 0);
        for &page in &self.dirty {
            let start = page * PAGE_BYTES;
            let end = ((page + 1) * PAGE_BYTES).min(len).min(self.live.len());
            if start >= end {
                continue;
            }
            match rng.below(4) {
                0 => {} // old
                1 | 2 => image[start..end].copy_from_slice(&self.live[start..end]),
                _ => {
                    // Torn: each sector old or new.
                    for sector in (start..end).step_by(SECTOR_BYTES) {
                        let sector_end = (sector + SECTOR_BYTES).min(end);
                        if rng.below(2) == 0 {
                            image[sector..sector_end].copy_from_slice(&self.live[sector..sector_end]);
                        }
                    }
                }
            }
        }
        image
    }
}

/// A redb storage backend over a shared [`Medium`].
#[derive(Debug, Clone)]
struct CrashBackend(Arc<Mutex<Medium>>);

impl CrashBackend {
    fn medium(&self) -> std::sync::MutexGuard<'_, Medium> {
        self.0.lock().unwrap()
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "beyond the end of the file")
}

impl StorageBackend for CrashBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.medium().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let medium = self.medium();
        if medium.cut {
            return Err(io::Error::other("power cut"));
        }
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let source = medium
            .live
            .get(start..start + out.len())
            .ok_or_else(out_of_range)?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut medium = self.medium();
        medium.io()?;
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        let old = medium.live.len();
        medium.live.resize(len, 0);
        // A shrink then a regrow must not resurrect old bytes in the durable image.
        let first_page = len.min(old) / PAGE_BYTES;
        let last_page = len.max(old).div_ceil(PAGE_BYTES);
        medium.dirty.extend(first_page..last_page);
        medium.len_dirty = true;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut medium = self.medium();
        medium.io()?;
        medium.sync();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut medium = self.medium();
        medium.io()?;
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start + data.len();
        if end > medium.live.len() {
            medium.live.resize(end, 0);
            medium.len_dirty = true;
        }
        medium.live[start..end].copy_from_slice(data);
        medium.dirty.extend(start / PAGE_BYTES..end.div_ceil(PAGE_BYTES));
        Ok(())
    }
}

// ------------------------------------------------------------------------- the store

fn table_definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// As `meta_db::open_database`: open (repairing after a crash) and make sure every table exists.
fn open_store(backend: CrashBackend) -> Result<Database, redb::Error> {
    let db = redb::Builder::new()
        .set_cache_size(1 << 20)
        .create_with_backend(backend)?;
    let txn = db.begin_write()?;
    for table in Table::ALL {
        txn.open_table(table_definition(table))?;
    }
    txn.commit()?;
    Ok(db)
}

#[derive(Clone, Debug)]
struct Op {
    table: Table,
    key: Vec<u8>,
    /// `None` deletes.
    value: Option<Vec<u8>>,
}

type Batch = Vec<Op>;
type State = BTreeMap<(&'static str, Vec<u8>), Vec<u8>>;

/// As `group_commit::apply`: one caller's batch, tables opened lazily once per transaction.
fn apply<'txn>(
    txn: &'txn WriteTransaction,
    tables: &mut BTreeMap<&'static str, redb::Table<'txn, &'static [u8], &'static [u8]>>,
    batch: &Batch,
) -> Result<(), redb::Error> {
    for op in batch {
        let name = op.table.name();
        if !tables.contains_key(name) {
            tables.insert(name, txn.open_table(table_definition(op.table))?);
        }
        let table = tables.get_mut(name).unwrap();
        match &op.value {
            Some(value) => {
                table.insert(op.key.as_slice(), value.as_slice())?;
            }
            None => {
                table.remove(op.key.as_slice())?;
            }
        }
    }
    Ok(())
}

/// As `group_commit::commit_group`: every batch of the group in one transaction with
/// Immediate durability; `Ok` for all of them only once it committed.
fn commit_group(db: &Database, group: &[Batch]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    {
        let mut tables = BTreeMap::new();
        for batch in group {
            apply(&txn, &mut tables, batch)?;
        }
    }
    txn.commit()?;
    Ok(())
}

fn read_state(db: &Database) -> Result<State, redb::Error> {
    let txn = db.begin_read()?;
    let mut state = State::new();
    for table in TABLES {
        let opened = txn.open_table(table_definition(table))?;
        for entry in opened.iter()? {
            let (key, value) = entry?;
            state.insert((table.name(), key.value().to_vec()), value.value().to_vec());
        }
    }
    Ok(state)
}

fn apply_to_model(state: &mut State, group: &[Batch]) {
    for op in group.iter().flatten() {
        let key = (op.table.name(), op.key.clone());
        match &op.value {
            Some(value) => state.insert(key, value.clone()),
            None => state.remove(&key),
        };
    }
}

// ------------------------------------------------------------------------- the workload

/// The groups of one run: fresh keys, overwrites and deletes, small values and values that
/// span pages (redb stores those out of line).
fn workload(rng: &mut Rng) -> Vec<Vec<Batch>> {
    let mut keys: Vec<(Table, Vec<u8>)> = Vec::new();
    let mut groups = Vec::new();
    let mut n_batches = 0;
    for _ in 0..TXNS_PER_RUN {
        let mut group = Vec::new();
        for _ in 0..1 + rng.below(BATCHES_PER_TXN_MAX) {
            n_batches += 1;
            let mut batch = Vec::new();
            for op_idx in 0..1 + rng.below(OPS_PER_BATCH_MAX) {
                let size = if rng.below(4) == 0 {
                    2000 + rng.below(9000)
                } else {
                    10 + rng.below(300)
                } as usize;
                let value: Vec<u8> = format!("batch {n_batches} op {op_idx} ")
                    .into_bytes()
                    .into_iter()
                    .cycle()
                    .take(size)
                    .collect();
                let choice = rng.below(10);
                if choice < 2 && !keys.is_empty() {
                    let (table, key) = keys[rng.below(keys.len() as u64) as usize].clone();
                    batch.push(Op {
                        table,
                        key,
                        value: None,
                    });
                } else if choice < 4 && !keys.is_empty() {
                    let (table, key) = keys[rng.below(keys.len() as u64) as usize].clone();
                    batch.push(Op {
                        table,
                        key,
                        value: Some(value),
                    });
                } else {
                    let table = TABLES[rng.below(TABLES.len() as u64) as usize];
                    let key = format!("key-{n_batches:05}-{op_idx}").into_bytes();
                    keys.push((table, key.clone()));
                    batch.push(Op {
                        table,
                        key,
                        value: Some(value),
                    });
                }
            }
            group.push(batch);
        }
        groups.push(group);
    }
    groups
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Acked,
    /// Failed with a transient error, or in flight at the cut: there entirely or not at all.
    Failed,
    /// Never started (the power was gone).
    NotRun,
}

struct RunStats {
    n_ios: u64,
    n_acked: usize,
    in_flight_landed: bool,
}

/// One life of a store: setup, groups until the power goes (after a transient error, maybe),
/// then the store opened on what survived and checked.
fn run(seed: u64, cut_at_io: Option<u64>) -> Result<RunStats, String> {
    let mut rng = Rng(seed);
    let groups = workload(&mut rng);
    let medium = Arc::new(Mutex::new(Medium::new(u64::MAX)));
    let backend = CrashBackend(medium.clone());
    let mut db = Some(open_store(backend.clone()).map_err(|e| format!("setup: {e}"))?);
    {
        // Crash points count from the end of the setup.
        let mut m = medium.lock().unwrap();
        let setup_ios = m.n_ios;
        if let Some(cut) = cut_at_io {
            m.cut_at_io = setup_ios + cut;
            if rng.below(2) == 0 && cut > 2 {
                m.fail_once_at_io = Some(setup_ios + 1 + rng.below(cut - 1));
            }
        }
    }
    let mut outcomes = Vec::new();
    for group in &groups {
        if medium.lock().unwrap().cut {
            outcomes.push(Outcome::NotRun);
            continue;
        }
        let Some(store) = db.as_ref() else {
            outcomes.push(Outcome::NotRun);
            continue;
        };
        match commit_group(store, group) {
            Ok(()) => outcomes.push(Outcome::Acked),
            Err(_) => {
                outcomes.push(Outcome::Failed);
                // As `MetaDb::reopen`: close the failed store, open it again (repairing from
                // its last durable commit). Without power this fails too; then nothing more
                // runs, as the process would be gone.
                let old = db.take().unwrap();
                let _ = old.close();
                db = open_store(backend.clone()).ok();
            }
        }
    }
    drop(db);
    let n_ios = medium.lock().unwrap().n_ios;
    let image = medium.lock().unwrap().after_power_loss(&mut rng);

    // Reboot on what survived.
    let survived = Arc::new(Mutex::new(Medium {
        live: image.clone(),
        durable: image,
        ..Medium::new(u64::MAX)
    }));
    let db = open_store(CrashBackend(survived)).map_err(|e| format!("reopen after the cut: {e}"))?;
    let found = read_state(&db).map_err(|e| format!("read after the cut: {e}"))?;

    // The allowed states: every acknowledged group, each failed one entirely or not at all,
    // in order (transactions are serial). Few failed groups per run (at most two), so the
    // choices are enumerated.
    let failed: Vec<usize> = (0..groups.len())
        .filter(|i| outcomes[*i] == Outcome::Failed)
        .collect();
    assert!(failed.len() <= 2, "{outcomes:?}");
    let mut matched = None;
    for mask in 0..1u32 << failed.len() {
        let mut state = State::new();
        for (i, group) in groups.iter().enumerate() {
            let included = match outcomes[i] {
                Outcome::Acked => true,
                Outcome::Failed => mask & (1 << failed.iter().position(|f| *f == i).unwrap()) != 0,
                Outcome::NotRun => false,
            };
            if included {
                apply_to_model(&mut state, group);
            }
        }
        if state == found {
            matched = Some(mask);
            break;
        }
    }
    let n_acked = outcomes.iter().filter(|o| **o == Outcome::Acked).count();
    let Some(mask) = matched else {
        // Say how it differs from the acknowledged state.
        let mut acked_state = State::new();
        for (i, group) in groups.iter().enumerate() {
            if outcomes[i] == Outcome::Acked {
                apply_to_model(&mut acked_state, group);
            }
        }
        let missing: Vec<String> = acked_state
            .iter()
            .filter(|(k, v)| found.get(*k) != Some(*v))
            .map(|((t, k), _)| format!("{t}/{}", String::from_utf8_lossy(k)))
            .take(5)
            .collect();
        let extra: Vec<String> = found
            .iter()
            .filter(|(k, v)| acked_state.get(*k) != Some(*v))
            .map(|((t, k), _)| format!("{t}/{}", String::from_utf8_lossy(k)))
            .take(5)
            .collect();
        return Err(format!(
            "the store after the cut matches no allowed state ({n_acked} groups acknowledged, \
             outcomes {outcomes:?}); differing from the acknowledged state: wrong or missing \
             {missing:?}, unexpected {extra:?}"
        ));
    };

    // The repaired store takes new commits.
    let extra = vec![vec![Op {
        table: Table::Objects,
        key: b"after-reboot".to_vec(),
        value: Some(b"x".to_vec()),
    }]];
    commit_group(&db, &extra).map_err(|e| format!("commit after the cut: {e}"))?;
    Ok(RunStats {
        n_ios,
        n_acked,
        in_flight_landed: mask != 0,
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn cut_for(seed: u64, n_ios_full: u64) -> u64 {
    Rng(seed ^ 0xc47).below(n_ios_full + 1)
}

#[test]
fn acknowledged_metadata_batches_survive_power_loss_whole() {
    if let Ok(replay) = std::env::var("STRATA_META_CRASH_REPLAY") {
        let parts: Vec<u64> = replay.split(':').map(|p| p.parse().unwrap()).collect();
        let [seed, cut] = parts[..] else {
            panic!("STRATA_META_CRASH_REPLAY=<seed>:<cut>");
        };
        if let Err(err) = run(seed, Some(cut)) {
            panic!("seed {seed}, power cut at I/O {cut}: {err}");
        }
        return;
    }
    let master = env_u64("STRATA_META_CRASH_SEED").unwrap_or(SEED_DEFAULT);
    // A run without a cut: how many I/Os a run makes after its setup, so cuts cover all of it.
    let full = run(master, None).unwrap_or_else(|e| panic!("without a power cut: {e}"));
    assert_eq!(full.n_acked, TXNS_PER_RUN);
    let n_runs = env_u64("STRATA_META_CRASH_RUNS").unwrap_or(RUNS_DEFAULT);
    let started = Instant::now();
    let (mut n_acked, mut n_landed) = (0, 0);
    for i in 0..n_runs {
        let seed = mix(master ^ mix(i));
        let cut = cut_for(seed, full.n_ios);
        match run(seed, Some(cut)) {
            Ok(stats) => {
                n_acked += stats.n_acked;
                n_landed += usize::from(stats.in_flight_landed);
            }
            Err(err) => panic!(
                "run {i}: seed {seed}, power cut at I/O {cut} of {}: {err}\n\
                 replay with STRATA_META_CRASH_REPLAY={seed}:{cut}",
                full.n_ios
            ),
        }
    }
    eprintln!(
        "{n_runs} power cuts over {} I/Os each: {n_acked} acknowledged groups kept; a failed \
         group landed whole in {n_landed} runs ({:.1} s)",
        full.n_ios,
        started.elapsed().as_secs_f64()
    );
}
