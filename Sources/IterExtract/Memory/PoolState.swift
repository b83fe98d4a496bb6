/// The side table and buddy free lists of a ``PagePool``; always used under its lock.
struct PoolState: ~Copyable {
    let pageCount: Int
    /// Per page: the index of the head of the allocated folio that owns it, or -1.
    var owner: UnsafeMutablePointer<Int32>
    /// Per head page (allocated or free block): the block's order.
    var order: UnsafeMutablePointer<UInt8>
    /// Per head page: whether it heads a free block.
    var isFreeHead: UnsafeMutablePointer<Bool>
    var refCount: UnsafeMutablePointer<Int32>
    var pinCount: UnsafeMutablePointer<Int32>
    var freeLists: [[Int]]
    var freePages: Int
    var random: SplitMix64?

    init(pageCount: Int, placement: PagePool.Placement) {
        self.pageCount = pageCount
        owner = .allocate(capacity: pageCount)
        owner.initialize(repeating: -1, count: pageCount)
        order = .allocate(capacity: pageCount)
        order.initialize(repeating: 0, count: pageCount)
        isFreeHead = .allocate(capacity: pageCount)
        isFreeHead.initialize(repeating: false, count: pageCount)
        refCount = .allocate(capacity: pageCount)
        refCount.initialize(repeating: 0, count: pageCount)
        pinCount = .allocate(capacity: pageCount)
        pinCount.initialize(repeating: 0, count: pageCount)
        freeLists = Array(repeating: [], count: Folio.maxOrder + 1)
        freePages = pageCount
        if case .shuffled(let seed) = placement { random = SplitMix64(seed: seed) }
        var index = 0
        while index < pageCount {
            var blockOrder = Folio.maxOrder
            while index % (1 << blockOrder) != 0 || index + (1 << blockOrder) > pageCount { blockOrder -= 1 }
            pushFree(index, order: blockOrder)
            index += 1 << blockOrder
        }
    }

    func deallocate() {
        owner.deallocate()
        order.deallocate()
        isFreeHead.deallocate()
        refCount.deallocate()
        pinCount.deallocate()
    }

    func headIndex(of index: Int) -> Int? {
        let head = owner[index]
        return head < 0 ? nil : Int(head)
    }

    mutating func allocate(order wanted: Int) -> Int? {
        guard let found = (wanted...Folio.maxOrder).first(where: { !freeLists[$0].isEmpty }) else { return nil }
        let index = popFree(order: found)
        var blockOrder = found
        while blockOrder > wanted {
            blockOrder -= 1
            pushFree(index + (1 << blockOrder), order: blockOrder)
        }
        order[index] = UInt8(wanted)
        for page in index..<index + (1 << wanted) { owner[page] = Int32(index) }
        refCount[index] = 1
        pinCount[index] = 0
        freePages -= 1 << wanted
        return index
    }

    mutating func free(index: Int) {
        var head = index
        var blockOrder = Int(order[index])
        for page in index..<index + (1 << blockOrder) { owner[page] = -1 }
        freePages += 1 << blockOrder
        while blockOrder < Folio.maxOrder {
            let buddy = head ^ (1 << blockOrder)
            guard buddy + (1 << blockOrder) <= pageCount, isFreeHead[buddy], Int(order[buddy]) == blockOrder else { break }
            freeLists[blockOrder].removeAll { $0 == buddy }
            isFreeHead[buddy] = false
            head = min(head, buddy)
            blockOrder += 1
        }
        pushFree(head, order: blockOrder)
    }

    private mutating func pushFree(_ index: Int, order blockOrder: Int) {
        order[index] = UInt8(blockOrder)
        isFreeHead[index] = true
        freeLists[blockOrder].append(index)
    }

    private mutating func popFree(order blockOrder: Int) -> Int {
        let list = freeLists[blockOrder]
        let position: Int
        if random != nil {
            position = Int(random!.next() % UInt64(list.count))
        } else {
            position = list.indices.min { list[$0] < list[$1] }!
        }
        let index = freeLists[blockOrder].remove(at: position)
        isFreeHead[index] = false
        return index
    }
}
