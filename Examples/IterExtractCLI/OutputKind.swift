import ArgumentParser

/// What the demo extracts the iterator into.
enum OutputKind: String, ExpressibleByArgument, CaseIterable {
    /// Pages with the first page's offset (`iov_iter_extract_pages`).
    case pages
    /// A chained scatter table (`extract_iter_to_sg`).
    case sg
    /// `ibv_sge` entries and the work-request plan they make (`smb_extract_iter_to_rdma`).
    case sge
}

/// A digest of the bytes a scatter table describes.
enum DigestKind: String, ExpressibleByArgument, CaseIterable {
    case sha256
    case crc32c
}

/// Right-aligns `value` in `width` columns.
func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
    let text = value.description
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

/// `0x` and the lowercase hex digits of `value`.
func hex(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }
