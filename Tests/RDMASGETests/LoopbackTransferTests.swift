import Glibc
import IterExtract
import RDMASGE
import Testing
import SoftVerbs

@Suite("SoftVerbs loopback")
struct LoopbackTransferTests {
    static let data: [UInt8] = (0..<(3 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    @Test("moves and verifies a buffer, reporting progress", arguments: LoopbackTransfer<SoftVerbs>.Method.allCases)
    func loopback(method: LoopbackTransfer<SoftVerbs>.Method) throws {
        let transfer = LoopbackTransfer(device: SoftVerbs(), method: method,
                                        limits: .init(maxSGEs: 6, maxMessageSize: 1 << 20), requestsPerPlan: 2)
        var destination = [UInt8](repeating: 0, count: Self.data.count)
        var reports: [Int] = []
        let ledger = PinLedger(mode: .exact)
        let moved = try destination.withUnsafeMutableBytes { target in
            try IOIterator.withSource(Self.data) { iterator in
                try transfer.run(source: &iterator, into: target, ledger: ledger) { moved, total in
                    #expect(total == Self.data.count)
                    reports.append(moved)
                }
            }
        }
        #expect(moved == Self.data.count)
        #expect(destination == Self.data)
        #expect(reports == [2 << 20, Self.data.count])
        #expect(ledger.isEmpty)
    }

    @Test("a failed completion is reported and releases the pins")
    func failure() throws {
        let device = SoftVerbs()
        device.inject(.completion(nth: 1, status: .remoteAccessError))
        let transfer = LoopbackTransfer(device: device, method: .rdmaWrite, limits: .init(maxSGEs: 2, maxMessageSize: 1 << 20))
        var destination = [UInt8](repeating: 0, count: 4096)
        let ledger = PinLedger(mode: .exact)
        #expect(throws: LoopbackTransfer<SoftVerbs>.Failure.completion(.remoteAccessError)) {
            try destination.withUnsafeMutableBytes { target in
                try IOIterator.withSource(Array(Self.data[..<4096])) { iterator in
                    try transfer.run(source: &iterator, into: target, ledger: ledger)
                }
            }
        }
        #expect(ledger.isEmpty)
        #expect(device.registeredRegionCount == 0)
    }

    @Test("a destination that is too small is refused")
    func tooSmall() throws {
        let transfer = LoopbackTransfer(device: SoftVerbs(), method: .send, limits: .init(maxSGEs: 2, maxMessageSize: 4096))
        var destination = [UInt8](repeating: 0, count: 10)
        #expect(throws: LoopbackTransfer<SoftVerbs>.Failure.destinationTooSmall(needed: 11, available: 10)) {
            try destination.withUnsafeMutableBytes { target in
                try IOIterator.withSource([UInt8](repeating: 1, count: 11)) { iterator in
                    try transfer.run(source: &iterator, into: target)
                }
            }
        }
    }
}
