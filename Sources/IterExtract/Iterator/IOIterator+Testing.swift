// Hooks for the package's tests: `package` access, so that tests exercise the real
// build instead of an `@testable` one (swift-collections' `Deque+Testing.swift` is the model).
extension IOIterator {
    /// A PIPE iterator that is a *source*, over `count` bytes of `pipe` from its head:
    /// no public initializer makes one (a pipe is a destination only), and tests use it
    /// to check that every extractor refuses it with ``IOIteratorError/pipeIsDestinationOnly``.
    package static func pipeSourceForTesting(_ pipe: PagePipe, count: Int) -> IOIterator {
        IOIterator(kind: .pipe, direction: .source, count: count, object: pipe, slot: pipe.head)
    }
}
