#if RDMA
import Glibc
import IBVerbs
import RDMASGE
import TestKit

/// Completion events on the libibverbs device: the CPU a thread spends waiting for a
/// late completion with events against busy polling, SEND ping-pong latency both
/// ways, and a chain of 64 requests in one `ibv_post_send` against 64 posts.
struct EventCases {
    let domain: IBVerbsProtectionDomain

    /// Two connected queue pairs; each sends to a polled queue and receives into a
    /// queue armed on a channel of its own.
    final class Pair: @unchecked Sendable {
        let channels: [IBVerbsCompletionChannel]
        let sendQueues: [IBVerbsCompletionQueue]
        let receiveQueues: [IBVerbsCompletionQueue]
        let pairs: [IBVerbsQueuePair]
        let memory: UnsafeMutableRawPointer
        let region: IBVerbsMemoryRegion
        static let slot = 4096

        init(domain: IBVerbsProtectionDomain) throws {
            let channels = try (0..<2).map { _ in try domain.createCompletionChannel() }
            let sendQueues = try (0..<2).map { _ in try domain.createCompletionQueue(capacity: 256) }
            let receiveQueues = try channels.map { try domain.createCompletionQueue(capacity: 256, channel: $0) }
            let capabilities = QueuePairCapabilities(maxSendWorkRequests: 128, maxReceiveWorkRequests: 64, maxSendSGEs: 4, maxReceiveSGEs: 1)
            pairs = try (0..<2).map {
                try domain.createQueuePair(sendCompletions: sendQueues[$0], receiveCompletions: receiveQueues[$0], capabilities: capabilities)
            }
            (self.channels, self.sendQueues, self.receiveQueues) = (channels, sendQueues, receiveQueues)
            try IBVerbsQueuePair.connect(pairs[0], pairs[1])
            memory = UnsafeMutableRawPointer.allocate(byteCount: 4 * Self.slot, alignment: 4096)
            memset(memory, 0x5a, 4 * Self.slot)
            region = try domain.registerMemory(address: UInt(bitPattern: memory), length: 4 * Self.slot, access: .all)
        }

        /// The SGE of `length` bytes at slot `index`.
        func sge(_ index: Int, length: Int = 64) -> SGE {
            SGE(address: UInt64(region.address) + UInt64(index * Self.slot), length: UInt32(length), lkey: region.lkey)
        }

        func postReceive(on side: Int) throws {
            let list = [sge(2 + side)]
            try list.withUnsafeBufferPointer { try pairs[side].postReceive(ReceiveWorkRequest(id: 1000, sges: $0)) }
        }

        func postSend(from side: Int, id: UInt64) throws {
            let list = [sge(side)]
            try list.withUnsafeBufferPointer { try pairs[side].postSend(SendWorkRequest(id: id, opcode: .send, sges: $0)) }
        }

        /// Polls `side`'s send queue until `count` completions came (all must succeed).
        func drainSends(_ side: Int, count: Int) throws {
            var seen = 0
            let deadline = now() + 30
            while seen < count {
                if let completion = try sendQueues[side].poll() {
                    guard completion.status == .success else { throw Failure("send completed with \(completion)") }
                    seen += 1
                } else if now() > deadline {
                    throw Failure("\(seen) of \(count) send completions within 30 s")
                }
            }
        }

        /// Waits for the next receive on `side`, with events or by spinning.
        func receive(on side: Int, events: Bool) throws {
            let completion: WorkCompletion?
            if events {
                completion = try receiveQueues[side].wait(timeout: .seconds(30))
            } else {
                let deadline = now() + 30
                var found: WorkCompletion?
                while found == nil, now() < deadline { found = try receiveQueues[side].poll() }
                completion = found
            }
            guard let completion else { throw Failure("no receive on side \(side) within 30 s") }
            guard completion.status == .success, completion.opcode == .receive else { throw Failure("receive completed with \(completion)") }
        }

        func close() throws {
            for pair in pairs { try pair.close() }
            for queue in sendQueues + receiveQueues { try queue.close() }
            for channel in channels { try channel.close() }
            try region.deregister()
            memory.deallocate()
        }
    }

    /// The CPU seconds the calling thread used (`getrusage(RUSAGE_THREAD)`; the
    /// constant is behind `_GNU_SOURCE`, so its value 1 is spelled out).
    static func threadCPU() -> Double {
        var usage = rusage()
        _ = getrusage(1, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Waits on this thread for a SEND another thread posts after `delay` seconds;
    /// returns the waiting thread's CPU as a fraction of the wall time it waited.
    func waitCPU(_ pair: Pair, events: Bool, delay: Double = 2) throws -> (cpu: Double, wall: Double) {
        try pair.postReceive(on: 1)
        let poster = JoinableThread {
            usleep(UInt32(delay * 1e6))
            try? pair.postSend(from: 0, id: 1)
        }
        let wallStart = now(), cpuStart = Self.threadCPU()
        try pair.receive(on: 1, events: events)
        let cpu = Self.threadCPU() - cpuStart, wall = now() - wallStart
        poster.join()
        try pair.drainSends(0, count: 1)
        return (cpu / wall, wall)
    }

    /// Average one-way latency in µs of `iterations` 64-byte SEND round trips.
    func pingPong(_ pair: Pair, events: Bool, iterations: Int) throws -> Double {
        try pair.postReceive(on: 1)
        let start = now()
        for i in 0..<iterations {
            try pair.postReceive(on: 0)
            try pair.postSend(from: 0, id: UInt64(i))
            try pair.receive(on: 1, events: events)
            try pair.postReceive(on: 1)
            try pair.postSend(from: 1, id: UInt64(i))
            try pair.receive(on: 0, events: events)
            try pair.drainSends(0, count: 1)
            try pair.drainSends(1, count: 1)
        }
        let seconds = now() - start
        // The receive posted for a ping that never comes is flushed when the pair closes.
        return seconds / Double(2 * iterations) * 1e6
    }

    /// Nanoseconds of posting per request: 64 RDMA WRITEs of 64 bytes as one chain,
    /// or one post each, `rounds` times (completions drained outside the timing).
    func postCost(_ pair: Pair, chained: Bool, rounds: Int) throws -> Double {
        let list = [pair.sge(0)]
        return try list.withUnsafeBufferPointer { sges in
            let remote = UInt64(pair.region.address) + UInt64(3 * Pair.slot)
            let requests = (0..<64).map {
                SendWorkRequest(id: UInt64($0), opcode: .rdmaWrite, sges: sges, remoteAddress: remote, rkey: pair.region.rkey)
            }
            var spent = 0.0
            try requests.withUnsafeBufferPointer { chain in
                for _ in 0..<rounds {
                    let start = now()
                    if chained {
                        try pair.pairs[0].postSend(chain: chain)
                    } else {
                        for request in chain { try pair.pairs[0].postSend(request) }
                    }
                    spent += now() - start
                    try pair.drainSends(0, count: 64)
                }
            }
            return spent / Double(64 * rounds) * 1e9
        }
    }

    /// A chain whose fourth request has more SGEs than the queue pair allows: the
    /// error names position 3, and the three before it complete.
    func refusedChain(_ pair: Pair) throws -> VerbsError? {
        let list = (0...pair.pairs[0].capabilities.maxSendSGEs).map { _ in pair.sge(0, length: 8) }
        return try list.withUnsafeBufferPointer { sges in
            let one = UnsafeBufferPointer(rebasing: sges[0..<1])
            let remote = UInt64(pair.region.address) + UInt64(3 * Pair.slot)
            let requests = (0..<6).map {
                SendWorkRequest(id: UInt64($0), opcode: .rdmaWrite, sges: $0 == 3 ? sges : one, remoteAddress: remote, rkey: pair.region.rkey)
            }
            do {
                try requests.withUnsafeBufferPointer { try pair.pairs[0].postSend(chain: $0) }
            } catch let error as VerbsError {
                if let failed = error.failedRequest { try pair.drainSends(0, count: failed) }
                return error
            }
            try pair.drainSends(0, count: 6)
            return nil
        }
    }
}

#endif
