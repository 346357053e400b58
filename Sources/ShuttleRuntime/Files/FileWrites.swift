#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Plain descriptor writes and path names, without Foundation's FileHandle
/// and NSString (which would load Foundation, its ICU data and 6 MiB of
/// resident pages for a handful of calls).
enum FileWrites {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
    /// nil on success, else the errno of the failed write.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }

    /// Writes `text` to standard error, whole, ignoring failures (there is
    /// nowhere left to report them).
    static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
    }

    /// The directory part of `path` ("" for a bare file name, "/" for a
    /// file at the root), as NSString's `deletingLastPathComponent`.
    static func directory(of path: String) -> String {
        let trimmed = withoutTrailingSlash(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// The file name part of `path`.
    static func lastComponent(of path: String) -> String {
        let trimmed = withoutTrailingSlash(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `path` without a trailing slash, "/" itself kept.
    private static func withoutTrailingSlash(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// `name` inside `directory`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

/// Writes `text` to standard error (for the command line's own messages).
public func writeToStandardError(_ text: String) {
    FileWrites.writeToStandardError(text)
}
