import Glibc
import IterExtract
import RDMASGE
import SMBDirect
import SoftVerbs

/// A fresh temporary directory, removed (with its files) by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/smbdirect-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func write(_ bytes: [UInt8], to name: String) -> String {
        let file = path + "/" + name
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(descriptor >= 0)
        bytes.withUnsafeBytes { precondition(Glibc.write(descriptor, $0.baseAddress, $0.count) == $0.count) }
        close(descriptor)
        return file
    }

    func read(_ name: String) -> [UInt8]? {
        let file = path + "/" + name
        let descriptor = open(file, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        return bytes
    }

    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

/// `count` seeded pseudo-random bytes.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var random = SplitMix64(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        let word = random.next()
        for shift in stride(from: 0, to: 64, by: 8) where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word >> UInt64(shift))
            index += 1
        }
    }
    return bytes
}

/// Sends `prefix` then `payload`'s bytes as one upper-layer message from `connection`.
func send(_ prefix: [UInt8], payload: [UInt8], on connection: SMBDirectConnection<SoftProtectionDomain>,
          ledger: PinLedger = .shared) throws {
    try IOIterator.withSource(payload) { iterator in
        try prefix.withUnsafeBytes { bytes in
            try connection.send(bytes, payload: &iterator, keys: connection.sendRegistrations, ledger: ledger)
        }
    }
}

/// Negotiates, sets up an anonymous session and connects to the in-process server's share.
func connectShare<Device: VerbsDevice>(_ smb: SMB2Loopback<Device>) throws {
    try smb.client.negotiate()
    try smb.client.setUpAnonymousSession()
    try smb.client.connectTree("\\\\localhost\\share")
}
