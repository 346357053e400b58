/// A choice between SwiftNIO and a data path of our own that runs on Linux
/// only (`-tcp-relay`, `-udp-relay`, `-http-relay`): ours is the default on
/// Linux, and NIO is what every other platform runs, whatever was asked.
public protocol DataPath: RawRepresentable, Sendable, CaseIterable, CustomStringConvertible where RawValue == String {
    /// The Linux-only path.
    static var linuxPath: Self { get }
    /// SwiftNIO's path: every platform.
    static var nioPath: Self { get }
}

extension DataPath {
    /// Ours on Linux, NIO elsewhere.
    public static var platformDefault: Self {
        #if os(Linux)
        return linuxPath
        #else
        return nioPath
        #endif
    }

    /// What this platform can run: ours falls back to NIO off Linux.
    public var available: Self {
        #if os(Linux)
        return self
        #else
        return Self.nioPath
        #endif
    }

    public var description: String { rawValue }
}
