#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// glibc keeps the memory freed after a burst of connections in its arenas
/// (one per thread that allocated), so the resident size stays at the
/// peak long after the load is gone. Every few seconds the control loop
/// hands the free pages back to the system (`malloc_trim`): the resident
/// size follows the load down. The call takes each arena's lock briefly.
enum MemoryTrim {
    static let interval = TimeAmount.seconds(5)

    /// Starts trimming on `loop`; cancel the task to stop.
    static func start(
        on loop: any EventLoop, every interval: TimeAmount = MemoryTrim.interval,
        trim: @escaping @Sendable () -> Void = { _ = MemoryTrim.mallocTrim?(0) }
    ) -> RepeatedTask? {
        guard mallocTrim != nil else { return nil }
        return loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in trim() }
    }

    /// glibc's `malloc_trim` (declared in malloc.h, which Swift's Glibc
    /// module leaves out), looked up once; nil with another C library.
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()
}
