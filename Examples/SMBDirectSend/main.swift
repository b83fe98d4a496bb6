// Writes a file, read through the page cache (an XARRAY iterator), to an SMB server
// over SMB Direct, with SMB2 (NEGOTIATE, anonymous SESSION_SETUP, TREE_CONNECT,
// CREATE, WRITE inline or through the RDMA channel, CLOSE).
//
//     swift run smbdirect-send FILE [//host/share/path]
//
// Without a server it writes to the in-process receiver over SoftVerbs and verifies
// the copy byte for byte. The logic is `SMBDirectSend` in the SMBDirect library.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import SMBDirect

@main
struct SMBDirectSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smbdirect-send",
        abstract: "Write a file to an SMB server over SMB Direct (in-process over SoftVerbs without a server).")

    @Argument(help: "The file to send.")
    var file: String

    @Argument(help: "Where to write it: //host/share/path. Without it: the in-process receiver.")
    var target: String?

    @Option(help: "Writes of more bytes than this go through the RDMA channel.")
    var inlineThreshold: Int = 4096

    @Flag(help: "Keep the in-process receiver's copy.")
    var keep = false

    func run() throws {
        if let target {
            guard SMBDirectSendTarget(parsing: target) != nil else { throw ValidationError("\(target) is not //host/share/path") }
            throw ValidationError("a real server needs the RDMA trait's connection manager, which this build lacks")
        }
        var template = Array("/tmp/smbdirect-send-XXXXXX".utf8CString)
        guard let root = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw ValidationError("cannot make a directory for the receiver")
        }
        let name = file.split(separator: "/").last.map(String.init) ?? "file"
        let bar = TransferProgressBar()
        let report = try SMBDirectSend.runInProcess(
            file: file, target: SMBDirectSendTarget(host: "localhost", share: "share", path: name), serverRoot: root,
            inlineThreshold: inlineThreshold
        ) { done, total, elapsed in
            print("\r" + bar.render(done: done, total: total, elapsed: elapsed), terminator: "")
            fflush(nil)
        }
        print("\n" + report.description)
        if !keep {
            unlink(report.copyPath)
            rmdir(root)
        }
    }
}
