//! `OfflineDrive`: the stand-in for a drive that could not be opened, so that the set keeps
//! its shape and quorum arithmetic stays right. Every operation fails with `Offline`.

use async_trait::async_trait;
use bytes::Bytes;
use strata_drive::{
    DataDirEntry, DataDirId, Drive, DriveError, DriveInfo, DriveResult, FormatRecord, MetaEntry, MetaOp,
    ScanRange, ShardWrite, Table,
};

/// A drive that is not there.
#[derive(Debug)]
pub struct OfflineDrive {
    endpoint: String,
    format: FormatRecord,
}

impl OfflineDrive {
    /// A placeholder for the drive at `endpoint` expected to carry `format`.
    pub fn new(endpoint: String, format: FormatRecord) -> Self {
        OfflineDrive { endpoint, format }
    }

    fn offline<T>(&self) -> DriveResult<T> {
        Err(DriveError::Offline {
            endpoint: self.endpoint.clone(),
        })
    }
}

#[async_trait]
impl Drive for OfflineDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    fn format(&self) -> &FormatRecord {
        &self.format
    }
    async fn meta_get(&self, _table: Table, _key: &[u8]) -> DriveResult<Option<Bytes>> {
        self.offline()
    }
    async fn meta_scan(&self, _table: Table, _range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
        self.offline()
    }
    async fn meta_commit(&self, _ops: Vec<MetaOp>) -> DriveResult<()> {
        self.offline()
    }
    async fn meta_commit_deleting(&self, _ops: Vec<MetaOp>) -> DriveResult<()> {
        self.offline()
    }
    async fn shard_create(&self, _dir: DataDirId, _part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        self.offline()
    }
    async fn shard_read(&self, _dir: DataDirId, _part: u32, _offset: u64, _len: u64) -> DriveResult<Bytes> {
        self.offline()
    }
    async fn shard_size(&self, _dir: DataDirId, _part: u32) -> DriveResult<u64> {
        self.offline()
    }
    async fn shard_delete(&self, _dir: DataDirId, _part: u32) -> DriveResult<()> {
        self.offline()
    }
    async fn data_dir_delete(&self, _dir: DataDirId) -> DriveResult<()> {
        self.offline()
    }
    async fn data_dir_list(
        &self,
        _start_after: Option<DataDirId>,
        _limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>> {
        self.offline()
    }
    async fn info(&self) -> DriveResult<DriveInfo> {
        self.offline()
    }
    async fn healing_mark(&self) -> DriveResult<bool> {
        self.offline()
    }
    async fn set_healing_mark(&self, _on: bool) -> DriveResult<()> {
        self.offline()
    }
}
