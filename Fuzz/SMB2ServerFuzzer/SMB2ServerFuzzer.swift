import Glibc
import RDMASGE
import SMBDirect
import SoftVerbs

/// A hostile SMB2 client, played by the fuzz input against the real in-process
/// ``SMB2Server`` on SoftVerbs: each input is a script of requests (NEGOTIATE,
/// SESSION_SETUP, TREE_CONNECT, CREATE, WRITE inline or through the RDMA channel,
/// CLOSE, or any command with a raw body), each built as a client would and then
/// mutated (any header or body field, lengths, offsets, counts, names, channel
/// information, message, session and tree ids, truncation, trailing bytes), fed in
/// order to the server's request handler.
///
/// After every request: no trap (a trap crashes the fuzzer), a response that is a
/// well-formed SMB2 response to that request (or, for a message that breaks the
/// exchange, a typed error that ends the script), at most ``maxOpenFiles`` files and
/// descriptors open. After the server's teardown: no descriptor and no registered
/// region left.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let device = SoftVerbs()
    // After the device: its asynchronous-event descriptor lives as long as it does; and
    // after the MR caches' memory monitor, whose descriptor lives as long as the process.
    _ = memoryMonitorStarted
    let descriptors = openDescriptorCount()
    do {
        let session = ServerSession(device: device)
        session.run(&input)
        session.finish()
    }
    check(openDescriptorCount() == descriptors, "\(openDescriptorCount() - descriptors) descriptors left after tear-down")
    check(device.registeredRegionCount == 0, "\(device.registeredRegionCount) regions left after tear-down")
    return 0
}

/// Starts the process's memory monitor (the first MR cache does), once.
private let memoryMonitorStarted: Void = {
    _ = MRCache(domain: try! SoftVerbs().allocateProtectionDomain())
}()

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// The most files the server may hold open: small, so that a script reaches it.
private let maxOpenFiles = 4

/// Small transfers and a short timeout, so that a script runs quickly.
private let configuration = SMBDirectConfiguration(
    receiveCreditMax: 8, sendCreditTarget: 8, maxReadWriteSize: 64 << 10, timeout: .milliseconds(50), maxRDMAOperations: 4)

/// The descriptors this process has open.
private func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { fatalError("cannot list /proc/self/fd") }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    closedir(directory)
    return count
}

/// The server, its transport and directory, the client's memory the RDMA channel
/// reads, and what a client would know of the session.
final class ServerSession {
    /// What a step sends.
    enum Operation: Int, CaseIterable {
        case negotiate, sessionSetup, treeConnect, create, writeInline, writeChannel, close, raw
    }

    static let clientMemorySize = 64 << 10

    let descriptorBaseline: Int
    let root: String
    let transport: SMBDirectLoopback<SoftVerbs>
    var server: SMB2Server<SoftProtectionDomain>?
    let clientMemory: UnsafeMutableRawBufferPointer
    let clientRegion: SoftProtectionDomain.Region
    var messageID: UInt64 = 0
    var sessionID: UInt64 = 0
    var treeID: UInt32 = 0
    var files: [SMB2FileID] = []

    init(device: SoftVerbs) {
        var template = Array("/tmp/smb2-server-fuzz-XXXXXX".utf8CString)
        guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("cannot make a directory for the server")
        }
        root = String(cString: path)
        do {
            transport = try SMBDirectLoopback(device: device, initiator: configuration, responder: configuration)
            // The connections' completion channels are descriptors of their own, for the session's life.
            descriptorBaseline = openDescriptorCount()
            server = try SMB2Server(connection: transport.responder, root: root, maxOpenFiles: maxOpenFiles)
            clientMemory = .allocate(byteCount: Self.clientMemorySize, alignment: 4096)
            clientMemory.initializeMemory(as: UInt8.self, repeating: 0xA5)
            clientRegion = try transport.initiatorDomain.registerMemory(clientMemory, access: [.remoteRead])
        } catch {
            fatalError("cannot set up the server: \(error)")
        }
    }

    /// Sends the script's requests until it ends or the server stops.
    func run(_ input: inout FuzzInput) {
        var steps = 0
        while !input.isExhausted, steps < 64 {
            steps += 1
            let operation = Operation.allCases[input.byte() % Operation.allCases.count]
            var request = build(operation, &input)
            mutate(&request, operation, &input)
            guard step(request, operation) else { return }
        }
    }

    /// Tears the server down and removes its files.
    func finish() {
        server = nil
        try? clientRegion.deregister()
        clientMemory.deallocate()
        try? transport.close()
        if let directory = opendir(root) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(root + "/" + name) }
            }
            closedir(directory)
        }
        check(rmdir(root) == 0, "the server's directory holds more than files")
    }

    // MARK: Requests

    private func build(_ operation: Operation, _ input: inout FuzzInput) -> [UInt8] {
        var body = SMB2MessageWriter()
        var command = SMB2Command.negotiate
        var charge: UInt16 = 1
        switch operation {
        case .negotiate:
            let offered: [UInt16] = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]
            let mask = input.byte()
            // The top bit: with the 3.1.1 contexts (a preauth integrity and a signing context).
            let contexts: [SMB2NegotiateContext] = mask & 0x80 == 0 ? [] : [
                .preauthIntegrity(hashAlgorithms: [SMB2NegotiateContext.sha512], salt: input.bytes(32)),
                .signing(algorithms: [SMB2SigningAlgorithm.aesCMAC.rawValue]),
            ]
            SMB2NegotiateRequest(dialects: offered.indices.filter { mask >> $0 & 1 == 1 }.map { offered[$0] },
                                 clientGUID: input.bytes(16), contexts: contexts).encode(into: &body)
        case .sessionSetup:
            command = .sessionSetup
            let blob: [UInt8] = switch input.byte() % 4 {
            case 0: NTLMSSP.negotiate()
            case 1: NTLMSSP.anonymousAuthenticate()
            case 2: NTLMSSP.challenge(0x0123_4567_89AB_CDEF)
            default: input.bytes(input.byte())
            }
            SMB2SessionSetupRequest(securityBlob: blob).encode(into: &body)
        case .treeConnect:
            command = .treeConnect
            let path = switch input.byte() % 4 {
            case 0: "\\\\localhost\\share"
            case 1: "\\\\h\\SHARE"
            case 2: "\\\\h\\other"
            default: name(&input)
            }
            do { try SMB2TreeConnectRequest(path: path).encode(into: &body) } catch { fatalError("\(error)") }
        case .create:
            command = .create
            let name = switch input.byte() % 4 {
            case 0: "file-\(input.byte() % 8)"
            case 1: "..\\escape"
            case 2: "dir\\file"
            default: name(&input)
            }
            do { try SMB2CreateRequest(name: name).encode(into: &body) } catch { fatalError("\(error)") }
        case .writeInline:
            command = .write
            let file = fileID(&input)
            let offset = self.offset(&input)
            let length = input.number(below: 2048)
            charge = UInt16(SMB2Client<SoftProtectionDomain>.creditCharge(length))
            SMB2WriteRequest(fileID: file, offset: offset, length: length, descriptors: []).encode(into: &body)
            body.append((0..<length).map { UInt8(truncatingIfNeeded: $0) })
        case .writeChannel:
            command = .write
            let file = fileID(&input)
            let offset = self.offset(&input)
            let descriptors = (0...input.byte() % 8).map { _ in descriptor(&input) }
            let length = descriptors.reduce(0) { $0 + Int($1.length) }
            charge = UInt16(clamping: SMB2Client<SoftProtectionDomain>.creditCharge(length))
            SMB2WriteRequest(fileID: file, offset: offset, length: min(length, Int(UInt32.max)), descriptors: descriptors)
                .encode(into: &body)
        case .close:
            command = .close
            SMB2CloseRequest(fileID: fileID(&input)).encode(into: &body)
        case .raw:
            let code = UInt16(input.byte() % 16)
            command = SMB2Command(rawValue: code) ?? .negotiate
            body.append(input.bytes(input.byte()))
        }
        var message = SMB2MessageWriter()
        SMB2Header(command: command, creditCharge: charge, credits: 8, messageID: messageID,
                   treeID: treeID, sessionID: sessionID).encode(into: &message)
        message.append(body.bytes)
        return message.bytes
    }

    /// A name of up to 255 characters (510 UTF-16 units: always within a name field) from an alphabet with separators, dots and NUL.
    private func name(_ input: inout FuzzInput) -> String {
        let alphabet: [Character] = ["a", "B", "\\", "/", ".", "\0", ":", "é", "\u{1F600}", " ", "*", "\u{FFFF}"]
        return String((0..<input.byte()).map { _ in alphabet[input.byte() % alphabet.count] })
    }

    /// One of the files the server opened, or an id it never gave.
    private func fileID(_ input: inout FuzzInput) -> SMB2FileID {
        let choice = input.byte()
        if choice < 0xF0, !files.isEmpty { return files[choice % files.count] }
        let id = UInt64(choice & 0x0F) | (choice & 1 == 0 ? 0 : 1 << 63)
        return SMB2FileID(persistent: id, volatile: id)
    }

    /// A file offset: zero, small, or near the ends of the signed and unsigned ranges.
    private func offset(_ input: inout FuzzInput) -> UInt64 {
        let small = UInt64(input.number(below: 1 << 16))
        return switch input.byte() % 5 {
        case 0: 0
        case 1: small
        case 2: (1 << 63) - small
        case 3: UInt64.max - small
        default: input.bytes(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    /// A descriptor of the client's registered memory, or one that is off in its
    /// offset, key or length.
    private func descriptor(_ input: inout FuzzInput) -> BufferDescriptorV1 {
        let start = input.number(below: Self.clientMemorySize)
        let length = 1 + input.number(below: Self.clientMemorySize - start)
        let base = UInt64(UInt(bitPattern: clientMemory.baseAddress))
        var descriptor = BufferDescriptorV1(offset: base + UInt64(start), token: clientRegion.rkey, length: UInt32(length))
        switch input.byte() % 8 {
        case 0: descriptor.token &+= 1
        case 1: descriptor.offset = base &+ UInt64(Self.clientMemorySize) &+ UInt64(start)
        case 2: descriptor.offset = UInt64.max - UInt64(start)
        case 3: descriptor.length = UInt32.max - UInt32(start)
        case 4: descriptor.length = 0
        default: break
        }
        return descriptor
    }

    // MARK: Mutations

    /// Header fields (offset, width) every request has.
    private static let headerFields = [(6, 2), (8, 4), (12, 2), (14, 2), (16, 4), (20, 4), (24, 8), (36, 4), (40, 8)]

    /// Body fields (offset, width) of each operation's request.
    private static func bodyFields(_ operation: Operation) -> [(Int, Int)] {
        switch operation {
        case .negotiate: [(64, 2), (66, 2), (100, 2)]
        case .sessionSetup: [(64, 2), (76, 2), (78, 2)]
        case .treeConnect: [(64, 2), (68, 2), (70, 2)]
        case .create: [(64, 2), (100, 4), (108, 2), (110, 2)]
        case .writeInline, .writeChannel:
            [(64, 2), (66, 2), (68, 4), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4), (104, 2), (106, 2),
             (112, 8), (120, 4), (124, 4)]
        case .close: [(64, 2), (72, 8), (80, 8)]
        case .raw: [(64, 2)]
        }
    }

    /// Up to three mutations: a known field or any offset set to a chosen value, the
    /// message cut short, or bytes appended.
    private func mutate(_ message: inout [UInt8], _ operation: Operation, _ input: inout FuzzInput) {
        for _ in 0..<input.byte() % 4 {
            switch input.byte() % 4 {
            case 0:
                let fields = Self.headerFields + Self.bodyFields(operation)
                let (offset, width) = fields[input.byte() % fields.count]
                set(&message, at: offset, width: width, to: value(width: width, message.count, &input))
            case 1:
                let width = [1, 2, 4, 8][input.byte() % 4]
                let offset = input.number(below: max(1, message.count))
                set(&message, at: offset, width: width, to: value(width: width, message.count, &input))
            case 2:
                message.removeLast(message.count - input.number(below: message.count + 1))
            default:
                message += input.bytes(input.byte() % 64)
            }
        }
    }

    /// A value for a `width`-byte field: an edge, the message's length, or raw bytes.
    private func value(width: Int, _ count: Int, _ input: inout FuzzInput) -> UInt64 {
        let all: UInt64 = width == 8 ? .max : (1 << (8 * width)) - 1
        return switch input.byte() % 8 {
        case 0: 0
        case 1: 1
        case 2: all
        case 3: all >> 1 + 1
        case 4: UInt64(count)
        case 5: UInt64(count + 1)
        case 6: UInt64(input.byte())
        default: input.bytes(width).reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    /// Stores the low `width` bytes of `value` little-endian at `offset`, as far as the message goes.
    private func set(_ message: inout [UInt8], at offset: Int, width: Int, to value: UInt64) {
        for index in 0..<width where offset + index < message.count {
            message[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))
        }
    }

    // MARK: Checks

    /// Feeds `request` to the server and checks its response; returns whether the server goes on.
    private func step(_ request: [UInt8], _ operation: Operation) -> Bool {
        guard let server else { return false }
        let response: [UInt8]
        do {
            response = try server.response(to: request)
        } catch {
            guard case .malformed = error else { fatalError("the server stopped with \(error)") }
            return false
        }
        guard let header = try? SMB2Header(decoding: request) else { fatalError("the server answered what is no request") }
        check(response.count <= SMB2Header.size + 256, "a response of \(response.count) bytes")
        let answer: SMB2Header
        do { answer = try SMB2Header(decoding: response) } catch { fatalError("a response without a valid header: \(error)") }
        check(answer.isResponse && answer.command == header.command && answer.messageID == header.messageID,
              "\(answer.command) response for message \(answer.messageID) to \(header.command) \(header.messageID)")
        check(answer.credits >= 1, "a response that grants no credit")
        messageID = header.messageID + UInt64(max(1, header.creditCharge))
        checkBody(response, answer, request)
        check(server.openFiles.count <= maxOpenFiles, "\(server.openFiles.count) files open")
        check(openDescriptorCount() <= descriptorBaseline + maxOpenFiles, "descriptors beyond the open files")
        return true
    }

    /// Checks the body the status calls for, and learns the session, tree and files.
    private func checkBody(_ response: [UInt8], _ answer: SMB2Header, _ request: [UInt8]) {
        if answer.status.isError && answer.status != .moreProcessingRequired {
            check(response.count == SMB2Header.size + 9 && (try? SMB2MessageReader(response).expectStructureSize(9)) != nil,
                  "an error response without its error body")
            return
        }
        do throws(SMB2Error) {
            switch answer.command {
            case .negotiate:
                let body = try SMB2NegotiateResponse(decoding: response)
                let offered = try SMB2NegotiateRequest(decoding: request).dialects
                check(offered.contains(body.dialect), "dialect \(body.dialect) was not offered")
            case .sessionSetup:
                _ = try SMB2SessionSetupResponse(decoding: response)
                sessionID = answer.sessionID
            case .treeConnect:
                _ = try SMB2TreeConnectResponse(decoding: response)
                treeID = answer.treeID
            case .create:
                files.append(try SMB2CreateResponse(decoding: response).fileID)
            case .write:
                let count = try SMB2WriteResponse(decoding: response).count
                let length = try SMB2WriteRequest(decoding: request, maxTransferSize: configuration.maxReadWriteSize).length
                check(count == length, "a WRITE of \(length) bytes answered with a count of \(count)")
            case .close:
                try SMB2CloseResponse.validate(response)
            default:
                fatalError("\(answer.command) answered with success")
            }
        } catch {
            fatalError("a \(answer.status) response to \(answer.command) that does not decode: \(error)")
        }
    }
}
