import Foundation
import Glibc

/// A pseudo-terminal pair: the simulator serves on the master side, and the
/// controller opens the slave path as if it were a serial port.
public final class PseudoTerminal: @unchecked Sendable {
    public let masterFD: Int32
    /// Held open so the master never reads EIO between controller connections.
    private let slaveFD: Int32
    public let slavePath: String
    /// A stable name (symlink) that points at `slavePath`, if one was asked for.
    public let linkPath: String?

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(linkPath: String? = nil) throws(Failure) {
        var master: Int32 = -1
        var slave: Int32 = -1
        var name = [CChar](repeating: 0, count: 256)
        guard openpty(&master, &slave, &name, nil, nil) == 0 else {
            throw Failure(description: "openpty failed: \(String(cString: strerror(errno)))")
        }
        var attributes = termios()
        tcgetattr(slave, &attributes)
        cfmakeraw(&attributes)
        tcsetattr(slave, TCSANOW, &attributes)
        tcgetattr(master, &attributes)
        cfmakeraw(&attributes)
        tcsetattr(master, TCSANOW, &attributes)
        masterFD = master
        slaveFD = slave
        slavePath = String(cString: name)
        if let linkPath {
            let directory = (linkPath as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            unlink(linkPath)
            guard symlink(slavePath, linkPath) == 0 else {
                let message = String(cString: strerror(errno))
                close(master)
                close(slave)
                throw Failure(description: "cannot link \(linkPath) -> \(slavePath): \(message)")
            }
        }
        self.linkPath = linkPath
    }

    /// The path a controller should open.
    public var path: String { linkPath ?? slavePath }

    deinit {
        if let linkPath { unlink(linkPath) }
        close(masterFD)
        close(slaveFD)
    }
}
