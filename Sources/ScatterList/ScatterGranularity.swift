/// How many bytes one scatter entry made by extraction may cover.
public enum ScatterGranularity: Hashable, Sendable {
    /// The kernel's `extract_iter_to_sg` granularity: one entry per page for UBUF,
    /// IOVEC and KVEC; one per `BioVec` for BVEC; one per folio for
    /// FOLIOQ and XARRAY.
    case kernel
    /// Bytes that continue the previous entry in the same frame or the next frame
    /// join it, while it stays within `maxSegment` bytes (rounded down to a page
    /// multiple). This merges contiguous pages of one folio or one user buffer, and
    /// also of adjacent segments or folios that happen to be contiguous.
    case merged(maxSegment: Int)
}
