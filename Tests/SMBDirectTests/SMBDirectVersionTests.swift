import SMBDirect
import Testing

@Suite("SMB Direct version")
struct SMBDirectVersionTests {
    @Test("the protocol version is MS-SMBD's 1.0")
    func version() { #expect(smbDirectProtocolVersion == 0x0100) }
}
