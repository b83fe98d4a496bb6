import IterExtract
import RDMASGE

/// Memory of an iterator registered for the peer's RDMA, described by MS-SMBD 2.2.3.1
/// buffer descriptors: what an SMB2 READ or WRITE request with
/// `SMB2_CHANNEL_RDMA_V1` carries in its channel information.
///
/// Made by ``SMBDirectConnection/register(_:maxSize:maxDescriptors:ledger:)`` and
/// given back, exactly once, with ``SMBDirectConnection/release(_:)`` after the peer
/// has answered the request: the value cannot be copied, so it is given back once.
/// A registration that is dropped instead (an error path that forgot it) is given
/// back all the same when it goes: its pins and region references are released and
/// its regions deregistered, so that no rkey outlives the value that describes it.
public struct SMBDirectRegistration: ~Copyable {
    /// What the peer is told: one descriptor per registered run of memory.
    public let descriptors: [BufferDescriptorV1]
    /// The bytes the descriptors describe.
    public let byteCount: Int
    /// Whether the peer writes the memory (RDMA WRITE, for a read) rather than reads it.
    public let isPeerWritable: Bool
    let sges: [SGE]
    /// What the extraction took for `sges`, given back by ``SMBDirectConnection/release(_:)``.
    let retention: SGERetention

    deinit {
        retention.release(sges)
    }
}
