extension RandomAccessCollection where Index == Int {
    /// The index of the first element for which `isAfter` is true, in a collection
    /// partitioned so that every such element follows every other (a binary search);
    /// `endIndex` when there is none.
    @inlinable
    package func partitionPoint(where isAfter: (Element) -> Bool) -> Int {
        var low = startIndex
        var high = endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if isAfter(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
