// Writes a file, read through the page cache (an XARRAY iterator), to an SMB server
// over SMB Direct, with SMB2 (NEGOTIATE up to 3.1.1, SESSION_SETUP anonymous or NTLMv2,
// TREE_CONNECT, CREATE, WRITE inline or through the RDMA channel, CLOSE), signed
// when either side requires it.
//
//     swift run smbdirect-send FILE [//host/share/path]
//     PASSWD=... swift run smbdirect-send FILE //host/share/path --user NAME [--sign]
//     swift run smbdirect-send --read FILE //host/share/path     (a server's file into FILE)
//     swift run smbdirect-send --read FILE --serve SOURCE        (in-process: SOURCE served)
//
// Without a server it writes to the in-process receiver over SoftVerbs and verifies
// the copy byte for byte. With a server (a build with the RDMA trait) it connects
// through rdma_cm to host:445 (--port) and, given --verify PATH (the server's copy,
// when this machine can read it), compares the copy byte for byte.
// The logic is `SMBDirectSend` in the SMBDirect library.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import IterExtract
import SMBDirect
import SoftVerbs
import TestKit

@main
struct SMBDirectSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smbdirect-send",
        abstract: "Write a file to an SMB server over SMB Direct, or read one with --read (in-process over SoftVerbs without a server).",
        discussion: """
        Writing: smbdirect-send FILE [//host/share/path]. Reading: smbdirect-send --read FILE //host/share/path \
        reads the server's file into FILE (same order: the local file, then the remote path). Without a server, \
        --read FILE --serve SOURCE reads SOURCE through the in-process server (which serves SOURCE's directory) \
        into FILE and compares the two.

        A user: --user NAME (or DOMAIN\\NAME), the password from the environment variable PASSWD or the \
        first line of --password-file (never from the command line, never printed); without --user the \
        session is anonymous. The session signs every message (AES-CMAC, SMB 3.1.1) when the server requires \
        it or with --sign. A signature covers the SMB2 messages only, not data the RDMA channel moves, so a \
        signed session sends every WRITE and READ inline, at most one SMB Direct message each, as the \
        kernel's cifs client does. Exit status: 77 when the user name or password is wrong, 78 when signing \
        is required and fails (a response whose signature does not verify, or a session with no key), 64 for \
        a usage error, 1 for anything else.
        """)

    @Argument(help: "The file to send (with --read: the file the server's file is read into).")
    var file: String

    @Argument(help: "Where to write it (with --read: the file read): //host/share/path (host: an IPv4 address). Without it: the in-process receiver.",
              transform: { text in
                  guard let target = SMBDirectSendTarget(parsing: text) else { throw ValidationError("not //host/share/path") }
                  return target
              })
    var target: SMBDirectSendTarget?

    @Option(help: "Writes and reads of more bytes than this go through the RDMA channel.")
    var inlineThreshold: Int = 4096

    @Option(help: "The most WRITE (or READ) requests in flight at once, 1...1024 (1: one at a time).")
    var depth: Int = 4

    @Option(help: "The most buffer descriptors one RDMA-channel WRITE or READ carries, 1...4095.")
    var maxDescriptors: Int = SMB2Client<SoftProtectionDomain>.defaultMaxDescriptors

    @Option(help: ArgumentHelp(
        "The largest folio the file is read into, as a page order 0...\(Folio.maxOrder) (0: single pages, one buffer descriptor each).",
        valueName: "order"))
    var maxFolioOrder: Int = Folio.maxOrder

    @Option(help: "The server's SMB Direct port (ksmbd: 445 on RoCE/InfiniBand, 5445 on iWARP).")
    var port: UInt16 = 445

    @Option(help: "With a server: the path of the server's copy on this machine, compared byte for byte.")
    var verify: String?

    @Option(help: "With a server: the most bytes one RDMA transfer moves (MaxReadWriteSize).")
    var maxReadWriteSize: Int = 1 << 20

    @Option(help: ArgumentHelp(
        "With a server: record every SMB Direct message it sends to this file (fuzzer seeds: Fuzz/seeds-from-capture).",
        valueName: "file"))
    var capture: String?

    @Flag(help: "Keep the in-process receiver's copy.")
    var keep = false

    @Flag(help: "Read the server's file //host/share/path into FILE instead of writing FILE to it.")
    var read = false

    @Option(help: ArgumentHelp(
        "With --read and no server: the file the in-process server serves (from its directory), read into FILE.",
        valueName: "source"))
    var serve: String?

    @Option(help: ArgumentHelp("The user the session is for: NAME or DOMAIN\\NAME (the password: PASSWD or --password-file).",
                               valueName: "name"))
    var user: String?

    @Option(help: ArgumentHelp("With --user: a file whose first line is the password (instead of PASSWD).", valueName: "file"))
    var passwordFile: String?

    @Flag(help: "Require the session to sign every message, even when the server does not ask for it (needs --user).")
    var sign = false

    mutating func validate() throws {
        if user == nil, passwordFile != nil { throw ValidationError("--password-file goes with --user") }
        if sign, user == nil { throw ValidationError("--sign needs --user: an anonymous session has no key to sign with") }
        guard inlineThreshold >= 0 else { throw ValidationError("--inline-threshold must not be negative") }
        guard (1...1024).contains(depth) else { throw ValidationError("--depth must be in 1...1024") }
        guard (1...4095).contains(maxDescriptors) else { throw ValidationError("--max-descriptors must be in 1...4095") }
        guard (0...Folio.maxOrder).contains(maxFolioOrder) else {
            throw ValidationError("--max-folio-order must be in 0...\(Folio.maxOrder)")
        }
        guard port > 0 else { throw ValidationError("--port must be in 1...65535") }
        guard (1...Int(UInt32.max)).contains(maxReadWriteSize) else {
            throw ValidationError("--max-read-write-size must be in 1...\(UInt32.max)")
        }
        if verify != nil, target == nil { throw ValidationError("--verify goes with a server's //host/share/path") }
        if capture != nil, target == nil { throw ValidationError("--capture goes with a server's //host/share/path") }
        if serve != nil, !read || target != nil { throw ValidationError("--serve goes with --read and no server") }
        if read, target == nil, serve == nil { throw ValidationError("--read without a server needs --serve SOURCE") }
    }

    func run() throws {
        do {
            try transfer(login: login())
        } catch SMBDirectSendError.smb(let error) {
            let status: Int32 = switch error {
            case .status(.logonFailure, _): 77
            case .badSignature, .signingUnavailable: 78
            default: 1
            }
            let reason = status == 77 ? "logon failure for \(user ?? "anonymous"): the user name or password is wrong (\(error))"
                                      : "\(error)"
            writeToStandardError("smbdirect-send: \(reason)\n")
            throw ExitCode(status)
        }
    }

    /// The login the options describe; the password from `--password-file` or `PASSWD`.
    func login() throws -> SMBDirectSendLogin {
        guard let user else { return SMBDirectSendLogin(requiresSigning: sign) }
        let password: String
        if let passwordFile {
            guard let text = readPasswordFile(passwordFile) else { throw ValidationError("cannot read --password-file \(passwordFile)") }
            password = text
        } else if let variable = getenv("PASSWD") {
            password = String(cString: variable)
        } else {
            throw ValidationError("--user needs a password: set PASSWD or give --password-file")
        }
        return SMBDirectSendLogin(credentials: SMB2Credentials(qualifiedUser: user, password: password), requiresSigning: sign)
    }

    /// The first line of the file at `path`, without its line end; `nil` when it cannot be read.
    private func readPasswordFile(_ path: String) -> String? {
        guard let stream = fopen(path, "r") else { return nil }
        defer { fclose(stream) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        guard getline(&line, &capacity, stream) >= 0, let line else { return "" }
        var text = String(cString: line)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }

    private func transfer(login: SMBDirectSendLogin) throws {
        // Progress goes to standard error, and only for a transfer longer than a second.
        let line = ProgressLine()
        let show = { (done: Int, total: Int, _: Duration) in line.update(done: done, total: total) }
        if let target {
            #if RDMA
            let recorder = try capture.map { try MessageCapture(path: $0) }
            if read {
                let report = try SMBDirectSend.runReadOverRDMA(
                    file: file, target: target, port: port, inlineThreshold: inlineThreshold, depth: depth,
                    maxDescriptors: maxDescriptors, configuration: SMBDirectConfiguration(maxReadWriteSize: maxReadWriteSize),
                    verifyPath: verify, login: login, receivedMessageTap: recorder.map { recorder in { recorder.record($0) } }, progress: show)
                print(report.description)
                return
            }
            let report = try SMBDirectSend.runOverRDMA(
                file: file, target: target, port: port, inlineThreshold: inlineThreshold, depth: depth,
                maxDescriptors: maxDescriptors, maxFolioOrder: maxFolioOrder,
                configuration: SMBDirectConfiguration(maxReadWriteSize: maxReadWriteSize), verifyPath: verify, login: login,
                receivedMessageTap: recorder.map { recorder in { recorder.record($0) } }, progress: show)
            print(report.description)
            return
            #else
            _ = target
            throw ValidationError("a real server needs the connection manager: build with --traits RDMA")
            #endif
        }
        if read, let serve {
            let parts = serve.split(separator: "/", omittingEmptySubsequences: false)
            let directory = parts.count > 1 ? parts.dropLast().joined(separator: "/") : "."
            let report = try SMBDirectSend.runInProcessRead(
                file: file, target: SMBDirectSendTarget(host: "localhost", share: "share", path: String(parts.last!)),
                serverRoot: directory.isEmpty ? "/" : directory, inlineThreshold: inlineThreshold, depth: depth,
                maxDescriptors: maxDescriptors, login: login, progress: show)
            print(report.description)
            return
        }
        var template = Array("/tmp/smbdirect-send-XXXXXX".utf8CString)
        guard let root = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw ValidationError("cannot make a directory for the receiver")
        }
        let name = file.split(separator: "/").last.map(String.init) ?? "file"
        let report = try SMBDirectSend.runInProcess(
            file: file, target: SMBDirectSendTarget(host: "localhost", share: "share", path: name), serverRoot: root,
            inlineThreshold: inlineThreshold, depth: depth, maxDescriptors: maxDescriptors, maxFolioOrder: maxFolioOrder,
            login: login, progress: show)
        print(report.description)
        if !keep {
            unlink(report.copyPath)
            rmdir(root)
        }
    }
}
