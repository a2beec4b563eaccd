import Foundation
import FuzzTargets

// One libFuzzer executable for every target: `FuzzDriver TARGET [libFuzzer options] [corpus dirs]`.
// libFuzzer's own main is not used (SwiftPM renames ours); we hand it the callback.

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var target = ""

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(target, bytes)
    return 0
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, FuzzTargets.names.contains(arguments[1]) else {
    FileHandle.standardError.write(Data("usage: FuzzDriver TARGET [libFuzzer options] [corpus dirs]; targets: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
    exit(2)
}
target = arguments[1]
// libFuzzer sees argv without the target name.
var rest = [arguments[0]] + arguments.dropFirst(2)
var cStrings: [UnsafeMutablePointer<CChar>?] = rest.map { strdup($0) } + [nil]
var argc = CInt(rest.count)
let status = cStrings.withUnsafeMutableBufferPointer { buffer -> CInt in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return runDriver(&argc, &argv, testOneInput)
}
exit(status)
