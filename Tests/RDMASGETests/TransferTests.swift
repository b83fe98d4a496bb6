import Glibc
import IterExtract
import RDMASGE
import TestKit
import Testing

/// 1 MiB moved between two queue pairs from an iterator of each kind, through a plan,
/// with the iterator's memory registered by an MR cache.
@Suite("1 MiB transfers from every kind")
struct TransferTests {
    static let limits = WorkRequestPlan.Limits(maxSGEs: 6, maxMessageSize: 256 << 10)

    /// Builds, posts and completes plans until the iterator is empty; returns the plans' request count.
    static func move<Keys: KeyResolver>(
        _ iterator: inout IOIterator, _ operation: (Int) -> WorkRequestPlan.Operation, keys: Keys, ledger: PinLedger,
        verbs: VerbsPair, beforePost: (WorkRequestPlan, Int) throws -> Void = { _, _ in }
    ) throws -> Int {
        let plan = WorkRequestPlan(requestCapacity: 8, limits: limits)
        var moved = 0
        var requests = 0
        while iterator.count > 0 {
            let bytes = try plan.build(from: &iterator, operation: operation(moved), keys: keys, ledger: ledger)
            #expect(plan.isRetaining)
            try beforePost(plan, moved)
            try plan.post(on: verbs.sender, firstID: UInt64(requests))
            #expect(try plan.complete(polling: verbs.senderQueue) == .success)
            #expect(!plan.isRetaining)
            moved += bytes
            requests += plan.requests.count
        }
        return requests
    }

    @Test("RDMA WRITE arrives byte-exact and releases every pin and reference", arguments: WholeBuffer.kinds)
    func write(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        whole.buffer.fillWithPattern()
        let verbs = try VerbsPair()
        let target = PlainBuffer(pages: 256)
        let region = try verbs.domain.registerMemory(target.bytes, access: .all)
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .source)
        _ = try Self.move(&iterator, { .rdmaWrite(remoteAddress: UInt64(region.address) + UInt64($0), rkey: region.rkey) },
                          keys: cache, ledger: ledger, verbs: verbs)
        #expect(memcmp(target.bytes.baseAddress!, whole.buffer.bytes.baseAddress!, whole.count) == 0)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }

    @Test("SEND/RECV arrives byte-exact", arguments: WholeBuffer.kinds)
    func send(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        whole.buffer.fillWithPattern()
        let verbs = try VerbsPair()
        let target = PlainBuffer(pages: 256)
        let region = try verbs.domain.registerMemory(target.bytes, access: .localWrite)
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .source)
        let requests = try Self.move(&iterator, { _ in .send }, keys: cache, ledger: ledger, verbs: verbs) { plan, moved in
            for request in plan.requests {
                try verbs.receive([sge(region.address + UInt(moved + request.offset), request.byteCount, region.lkey)])
            }
        }
        let received = try verbs.drain(verbs.receiverQueue)
        #expect(received.count == requests && received.allSatisfy { $0.status == .success })
        #expect(received.reduce(0) { $0 + $1.byteCount } == whole.count)
        #expect(memcmp(target.bytes.baseAddress!, whole.buffer.bytes.baseAddress!, whole.count) == 0)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }

    @Test("RDMA READ fills a destination iterator byte-exact", arguments: WholeBuffer.kinds)
    func read(kind: IOIteratorKind) throws {
        let whole = WholeBuffer()
        whole.buffer.zero()
        let verbs = try VerbsPair()
        let remote = PlainBuffer(pages: 256)
        for i in 0..<whole.count { remote.bytes[i] = KUnit.pattern(i) }
        let region = try verbs.domain.registerMemory(remote.bytes, access: .all)
        let cache = MRCache(domain: verbs.domain, access: .localWrite)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(kind, .destination)
        _ = try Self.move(&iterator, { .rdmaRead(remoteAddress: UInt64(region.address) + UInt64($0), rkey: region.rkey) },
                          keys: cache, ledger: ledger, verbs: verbs)
        #expect(memcmp(remote.bytes.baseAddress!, whole.buffer.bytes.baseAddress!, whole.count) == 0)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }
}
