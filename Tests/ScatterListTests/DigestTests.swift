import Crypto
import IterExtract
import ScatterList
import TestKit
import Testing

@Suite("digests over a table's bytes")
struct DigestTests {
    @Test("CRC-32C check value and incremental updates")
    func crc32cCheckValue() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32C($0).value } == 0xE306_9283)
        #expect(CRC32C().value == 0)
        // Split at every point: the running checksum does not depend on the pieces.
        for split in 0...check.count {
            var crc = CRC32C()
            check[..<split].withUnsafeBytes { crc.update($0) }
            check[split...].withUnsafeBytes { crc.update($0) }
            #expect(crc.value == 0xE306_9283)
        }
        // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and ascending.
        #expect([UInt8](repeating: 0, count: 32).withUnsafeBytes { CRC32C($0).value } == 0x8A91_36AA)
        #expect([UInt8](repeating: 0xff, count: 32).withUnsafeBytes { CRC32C($0).value } == 0x62A8_AB43)
        #expect((0..<32).map { UInt8($0) }.withUnsafeBytes { CRC32C($0).value } == 0x46DD_794E)
    }

    @Test("SHA-256 and CRC-32C of a table equal those of its bytes copied flat", arguments: KUnitSource.allCases)
    func digests(source: KUnitSource) throws {
        let buffer = KUnitBuffer()
        let ledger = PinLedger(mode: .exact)
        try source.withIterator(buffer) { iterator, expected in
            let table = ScatterTable()
            try iterator.extract(maxSize: .max, into: table, maxEntries: 1000, ledger: ledger)
            table.markEnd()
            #expect(table.sha256() == SHA256.hash(data: expected))
            #expect(table.crc32c() == expected.withUnsafeBytes { CRC32C($0).value })
            var hasher = SHA512()
            table.update(&hasher)
            #expect(hasher.finalize() == SHA512.hash(data: expected))
            table.releasePins(ledger: ledger)
        }
        #expect(ledger.isEmpty)
    }
}
