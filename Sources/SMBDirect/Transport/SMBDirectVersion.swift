/// The SMB Direct protocol version this transport speaks (MS-SMBD 1.7 and 2.2.1: 0x0100).
public let smbDirectProtocolVersion: UInt16 = 0x0100
