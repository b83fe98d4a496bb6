import Glibc
import IterExtract
import RDMASGE
import SoftVerbs
import TestKit
import Testing

@Suite("Work-request planning")
struct WorkRequestPlanTests {
    @Test("requests keep within SGE and size limits, reserve leading SGEs and carry remote addresses")
    func shape() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.poolRange, access: .all)
        let limits = WorkRequestPlan.Limits(maxSGEs: 3, reservedSGEs: 1, maxMessageSize: 20_000)
        let plan = WorkRequestPlan(requestCapacity: 100, limits: limits)
        var iterator = whole.iterator(.bvec, .source)
        let expected = expectedSGEs(remainingRanges(iterator), regions: regionTable(over: whole.poolRange, cuts: []))
        let bytes = try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: 0x10_0000, rkey: 77), keys: keys)
        #expect(bytes == whole.count && iterator.count == 0)
        var offset = 0
        for request in plan.requests {
            #expect(request.sges.count <= 3 && request.sges.count >= 2)
            #expect(request.byteCount <= 20_000 && request.byteCount > 0)
            #expect(request.offset == offset)
            #expect(request.remoteAddress == 0x10_0000 + UInt64(offset) && request.rkey == 77 && request.opcode == .rdmaWrite)
            #expect(request.sges[0] == SGE(address: 0, length: 0, lkey: 0), "the reserved slot is the caller's")
            #expect(request.payload(reserved: 1).reduce(0) { $0 + Int($1.length) } == request.byteCount)
            offset += request.byteCount
        }
        // The payload, re-merged, is exactly the iterator's memory.
        var merged: [SGE] = []
        for sge in plan.requests.flatMap({ Array($0.payload(reserved: 1)) }) {
            if let last = merged.last, last.address + UInt64(last.length) == sge.address {
                merged[merged.count - 1].length += sge.length
            } else {
                merged.append(sge)
            }
        }
        #expect(merged == expected)
        plan.release()
    }

    @Test("the plan stops at its capacity and at maxSize; immediate data rides on the last request")
    func capacityAndImmediate() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.mappingRange, access: .all)
        let plan = WorkRequestPlan(requestCapacity: 3, limits: .init(maxSGEs: 2, maxMessageSize: 10_000))
        var iterator = whole.iterator(.kvec, .source)
        #expect(try plan.build(from: &iterator, operation: .sendWithImmediate(9), keys: keys) == 30_000)
        #expect(plan.requests.map(\.opcode) == [.send, .send, .sendWithImmediate])
        #expect(plan.requests.map(\.immediateData) == [0, 0, 9])
        plan.release()
        #expect(try plan.build(from: &iterator, operation: .rdmaWriteWithImmediate(remoteAddress: 0, rkey: 1, immediateData: 4),
                               keys: keys, maxSize: 15_000) == 15_000)
        #expect(plan.requests.map(\.opcode) == [.rdmaWrite, .rdmaWriteWithImmediate])
        #expect(iterator.count == whole.count - 45_000)
        plan.release()
    }

    @Test("small requests go inline, RDMA READs never do, reserved SGEs must be set")
    func inlineThreshold() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.mappingRange, access: .all)
        let plan = WorkRequestPlan(requestCapacity: 4, limits: .init(maxSGEs: 2, reservedSGEs: 1, maxMessageSize: 100, inlineThreshold: 120))
        var iterator = whole.iterator(.kvec, .source)
        try plan.build(from: &iterator, operation: .send, keys: keys, maxSize: 130)
        plan.setReservedSGE(sge(whole.mappingRange.lowerBound, 40, 1), slot: 0, request: 0)
        plan.setReservedSGE(sge(whole.mappingRange.lowerBound, 24, 1), slot: 0, request: 1)
        #expect(plan.workRequest(at: 0, id: 0, signaled: true).flags == [.signaled], "100 payload + 40 header bytes")
        #expect(plan.workRequest(at: 1, id: 1, signaled: false).flags == [.inline], "30 + 24 bytes")
        plan.release()
        var destination = whole.iterator(.kvec, .destination)
        let readPlan = WorkRequestPlan(requestCapacity: 1, limits: .init(maxSGEs: 1, maxMessageSize: 8, inlineThreshold: 120))
        try readPlan.build(from: &destination, operation: .rdmaRead(remoteAddress: 0, rkey: 0), keys: keys)
        #expect(readPlan.workRequest(at: 0, id: 0, signaled: true).flags == [.signaled])
        readPlan.release()
    }

    @Test("a request of reserved SGEs only: a header without payload, retaining nothing")
    func reservedOnly() throws {
        let whole = WholeBuffer()
        let keys = SingleKeyResolver(lkey: 1, coverage: whole.mappingRange, access: .all)
        let plan = WorkRequestPlan(requestCapacity: 2, limits: .init(maxSGEs: 3, reservedSGEs: 1, maxMessageSize: 100))
        var iterator = whole.iterator(.kvec, .source)
        try plan.build(from: &iterator, operation: .send, keys: keys, maxSize: 150)
        plan.release()
        plan.buildReservedOnly()
        #expect(plan.requests.count == 1 && plan.byteCount == 0 && !plan.isRetaining)
        #expect(plan.requests[0].sges.count == 1 && plan.requests[0].opcode == .send)
        plan.setReservedSGE(sge(whole.mappingRange.lowerBound, 24, 1), slot: 0, request: 0)
        let request = plan.workRequest(at: 0, id: 5, signaled: true)
        #expect(request.sges.count == 1 && request.sges[0].length == 24 && request.id == 5)
        // The next build is not held up by a release, as nothing was retained.
        #expect(try plan.build(from: &iterator, operation: .send, keys: keys, maxSize: 50) == 50)
        plan.release()
    }

    @Test("a failure in a later request leaves no trace of the earlier ones")
    func noTrace() throws {
        // Regions of at most one segment, so that each request registers its own.
        var attributes = SoftVerbs.defaultAttributes
        attributes.maxMemoryRegionSize = WholeBuffer.segmentSize
        let verbs = try VerbsPair(attributes: attributes, connect: false)
        let whole = WholeBuffer()
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(.iovec, .source)
        verbs.device.inject(.registration(nth: 5))
        let plan = WorkRequestPlan(requestCapacity: 16, limits: .init(maxSGEs: 1, maxMessageSize: 1 << 20))
        let ranges = remainingRanges(iterator)
        #expect(throws: RDMAError.registrationFailed(VerbsError(.registerMemory, errno: ENOMEM, ""))) {
            try plan.build(from: &iterator, operation: .send, keys: cache, ledger: ledger)
        }
        #expect(remainingRanges(iterator) == ranges && iterator.count == whole.count)
        #expect(plan.requests.isEmpty && plan.byteCount == 0 && !plan.isRetaining)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
        #expect(try plan.build(from: &iterator, operation: .send, keys: cache, ledger: ledger) == whole.count)
        #expect(ledger.pinnedPageCount == 256 && cache.referenceCount == 16)
        plan.release()
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }

    @Test("a remote range that would wrap past 2^64 is refused before anything is extracted, pinned or referenced")
    func remoteRangeOverflow() throws {
        let verbs = try VerbsPair(connect: false)
        let whole = WholeBuffer()
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        let plan = WorkRequestPlan(requestCapacity: 8, limits: .init(maxSGEs: 4, maxMessageSize: 64 << 10))
        let high = UInt64.max - 1000
        let operations: [WorkRequestPlan.Operation] = [
            .rdmaWrite(remoteAddress: high, rkey: 1),
            .rdmaWriteWithImmediate(remoteAddress: high, rkey: 1, immediateData: 2),
            .rdmaRead(remoteAddress: high, rkey: 1),
        ]
        for operation in operations {
            var iterator = whole.iterator(.iovec, operation == .rdmaRead(remoteAddress: high, rkey: 1) ? .destination : .source)
            let ranges = remainingRanges(iterator)
            // The most the plan could hold: 8 requests of 64 KiB.
            #expect(throws: RDMAError.remoteRangeOverflow(remoteAddress: high, length: 8 << 16)) {
                try plan.build(from: &iterator, operation: operation, keys: cache, ledger: ledger)
            }
            #expect(remainingRanges(iterator) == ranges && iterator.count == whole.count)
            #expect(plan.requests.isEmpty && plan.byteCount == 0 && !plan.isRetaining)
            #expect(ledger.isEmpty && cache.referenceCount == 0 && cache.statistics.misses == 0)
        }
        // maxSize bounds the range too: a range that ends at the last address fits, one byte more does not.
        var iterator = whole.iterator(.iovec, .source)
        #expect(throws: RDMAError.remoteRangeOverflow(remoteAddress: UInt64.max - 4999, length: 5000)) {
            try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: UInt64.max - 4999, rkey: 1),
                           keys: cache, ledger: ledger, maxSize: 5000)
        }
        #expect(try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: UInt64.max - 5000, rkey: 1),
                               keys: cache, ledger: ledger, maxSize: 5000) == 5000)
        #expect(plan.requests.last?.remoteAddress == UInt64.max - 5000)
        plan.release()
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }

    @Test("work-request identifiers wrap around past UInt64.max")
    func identifiersWrap() throws {
        let verbs = try VerbsPair()
        let whole = WholeBuffer()
        let target = PlainBuffer(pages: 1)
        let region = try verbs.domain.registerMemory(target.bytes, access: .all)
        let cache = MRCache(domain: verbs.domain)
        var iterator = whole.iterator(.ubuf, .source)
        let plan = WorkRequestPlan(requestCapacity: 3, limits: .init(maxSGEs: 1, maxMessageSize: 100))
        try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: UInt64(region.address), rkey: region.rkey),
                       keys: cache, maxSize: 300)
        try plan.post(on: verbs.sender, firstID: .max - 1, signaling: .every)
        #expect(plan.postedCount == 3)
        #expect(try plan.complete(polling: verbs.senderQueue) == .success)
        #expect(cache.referenceCount == 0)
    }

    @Test("a refused post reports how many went out; completing them releases the plan")
    func refusedPost() throws {
        let verbs = try VerbsPair()
        let whole = WholeBuffer()
        let target = PlainBuffer(pages: 256)
        let region = try verbs.domain.registerMemory(target.bytes, access: .all)
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(.ubuf, .source)
        let plan = WorkRequestPlan(requestCapacity: 4, limits: .init(maxSGEs: 1, maxMessageSize: 64 << 10))
        try plan.build(from: &iterator, operation: .rdmaWrite(remoteAddress: UInt64(region.address), rkey: region.rkey),
                       keys: cache, ledger: ledger)
        verbs.device.inject(.post(nth: 3))
        #expect(throws: VerbsError(.postSend, errno: ENOMEM, "")) { try plan.post(on: verbs.sender, firstID: 10, signaling: .every) }
        #expect(plan.postedCount == 2)
        #expect(try plan.complete(polling: verbs.senderQueue) == .success)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }

    @Test("a queue pair moved to error mid-transfer: the plan completes with flushes and still releases")
    func errorMidTransfer() throws {
        let verbs = try VerbsPair()
        let whole = WholeBuffer()
        let cache = MRCache(domain: verbs.domain)
        let ledger = PinLedger(mode: .exact)
        var iterator = whole.iterator(.iovec, .source)
        let plan = WorkRequestPlan(requestCapacity: 4, limits: .init(maxSGEs: 2, maxMessageSize: 64 << 10))
        try plan.build(from: &iterator, operation: .send, keys: cache, ledger: ledger)
        try plan.post(on: verbs.sender, signaling: .every)  // no receives posted: the SENDs wait
        try verbs.sender.modify(to: .error, remote: nil)
        #expect(try plan.complete(polling: verbs.senderQueue) == .workRequestFlushError)
        #expect(ledger.isEmpty && cache.referenceCount == 0)
    }
}
