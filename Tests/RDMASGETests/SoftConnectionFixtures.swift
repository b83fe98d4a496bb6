import Glibc
import Locking
import RDMASGE
import SoftVerbs
import Testing

/// One side of a connection: a queue pair with its own completion queue, and a
/// registered buffer.
final class ConnectionEndpoint: @unchecked Sendable {
    let queue: SoftCompletionQueue
    let pair: SoftQueuePair
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 14, alignment: 4096)
    let region: SoftMemoryRegion

    init(_ domain: SoftProtectionDomain) throws(VerbsError) {
        queue = try domain.createCompletionQueue(capacity: 64)
        let capabilities = QueuePairCapabilities(maxSendWorkRequests: 16, maxReceiveWorkRequests: 16, maxSendSGEs: 1, maxReceiveSGEs: 1)
        pair = try domain.createQueuePair(sendCompletions: queue, receiveCompletions: queue, capabilities: capabilities)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        region = try domain.registerMemory(buffer, access: .all)
    }

    deinit {
        try? region.deregister()
        try? pair.close()
        buffer.deallocate()
    }

    var address: UInt64 { UInt64(UInt(bitPattern: buffer.baseAddress)) }

    func sge(_ offset: Int, _ length: Int) -> SGE {
        SGE(address: address + UInt64(offset), length: UInt32(length), lkey: region.lkey)
    }

    func receive(id: UInt64, offset: Int = 0, length: Int = 256) throws(VerbsError) {
        try withUnsafePointer(to: sge(offset, length)) { (sge) throws(VerbsError) in
            try pair.postReceive(ReceiveWorkRequest(id: id, sges: UnsafeBufferPointer(start: sge, count: 1)))
        }
    }

    func send(id: UInt64, opcode: SendOpcode = .send, offset: Int = 0, length: Int, remoteAddress: UInt64 = 0,
              rkey: UInt32 = 0) throws(VerbsError) {
        try withUnsafePointer(to: sge(offset, length)) { (sge) throws(VerbsError) in
            try pair.postSend(SendWorkRequest(id: id, opcode: opcode, sges: UnsafeBufferPointer(start: sge, count: 1),
                                              remoteAddress: remoteAddress, rkey: rkey))
        }
    }

    /// Fills `length` bytes at `offset` with `byte`.
    func fill(_ byte: UInt8, offset: Int = 0, length: Int) {
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + length]).initializeMemory(as: UInt8.self, repeating: byte)
    }

    func bytes(_ offset: Int, _ length: Int) -> [UInt8] { Array(buffer[offset..<offset + length]) }
}

/// Work running on a POSIX thread of its own; ``join()`` waits for its result.
final class Spawned<Value: Sendable>: @unchecked Sendable {
    private let result = LockedValue<Result<Value, any Error>?>(nil)
    private let thread: pthread_t

    init(_ body: @escaping @Sendable () throws -> Value) {
        let result = self.result
        thread = startThread {
            let outcome = Result { try body() }
            result.withLock { $0 = outcome }
        }
    }

    /// Waits for the thread; what its work returned, or the verbs error it threw.
    func join() throws(VerbsError) -> Value {
        pthread_join(thread, nil)
        switch result.withLock({ $0! }) {
        case .success(let value): return value
        case .failure(let error as VerbsError): throw error
        case .failure(let error): preconditionFailure("the work threw \(error), not a verbs error")
        }
    }
}

/// Starts `run` on a POSIX thread of its own, to be joined.
func startThread(_ run: @escaping @Sendable () -> Void) -> pthread_t {
    final class Start {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let start = Unmanaged.passRetained(Start(run)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { Unmanaged<Start>.fromOpaque($0!).takeRetainedValue().run(); return nil }, start)
    precondition(status == 0, "pthread_create failed: \(status)")
    return thread
}

/// The verbs error `body` throws; `nil` when it returns or throws another error.
func failure<T>(_ body: () throws -> T) -> VerbsError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? VerbsError
    }
}

/// Connects `client` to the listener from a thread of its own, sending `request`,
/// while this thread accepts the request with `server`, replying with `reply`.
func establish(_ listener: SoftListener, host: String, client: ConnectionEndpoint, server: ConnectionEndpoint,
               request: ConnectionParameters = ConnectionParameters(),
               reply: ConnectionParameters = ConnectionParameters()) throws -> (client: SoftConnection, server: SoftConnection) {
    let port = listener.port
    let pair = client.pair
    let connecting = Spawned {
        try SoftConnection.connect(to: host, port: port, queuePair: pair, parameters: request, timeout: .seconds(10))
    }
    let taken = try #require(try listener.accept(timeout: .seconds(10)))
    let accepted = try taken.accept(server.pair, parameters: reply, timeout: .seconds(10))
    return (try connecting.join(), accepted)
}

/// The number of descriptors the process has open.
func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count
}
