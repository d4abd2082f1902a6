import Foundation
import MgpuAgent
import MgpuCore
import Testing

func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}

@Suite struct NvidiaSMIParserTests {
    @Test func eightGPUs() throws {
        let parsed = NvidiaSMI.parse(try fixture("nvidia-smi-8gpu.txt"))
        #expect(parsed.gpus.map(\.index) == Array(0..<8))
        #expect(parsed.gpus.allSatisfy { $0.name == "NVIDIA A100-SXM4-80GB" && $0.memoryMB == 81920 && !$0.simulated })
        #expect(parsed.gpus[7].uuid == "GPU-807192bb-d2ba-f5e1-74a5-c28cd1039578")
        #expect(parsed.rejected.isEmpty)
    }

    @Test func oneGPU() throws {
        let parsed = NvidiaSMI.parse(try fixture("nvidia-smi-1gpu.txt"))
        #expect(parsed.gpus == [GPU(index: 0, uuid: "GPU-9d1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8", name: "NVIDIA GeForce RTX 3080 Ti", memoryMB: 12288)])
    }

    /// Recorded on a real H100 (driver 580) by scripts/gpu-check.
    @Test func anH100() throws {
        let parsed = NvidiaSMI.parse(try fixture("nvidia-smi-h100.txt"))
        #expect(parsed.gpus == [GPU(index: 0, uuid: "GPU-109121be-1dac-0bac-6646-684ca0048e23", name: "NVIDIA H100 80GB HBM3", memoryMB: 81559)])
        #expect(parsed.rejected.isEmpty)
    }

    @Test func noGPUs() throws {
        let parsed = NvidiaSMI.parse(try fixture("nvidia-smi-0gpu.txt"))
        #expect(parsed.gpus.isEmpty)
        #expect(parsed.rejected.isEmpty)
        #expect(NvidiaSMI.parse("").gpus.isEmpty)
    }

    @Test func driverFailureIsRejectedNotGuessed() throws {
        let parsed = NvidiaSMI.parse(try fixture("nvidia-smi-nodriver.txt"))
        #expect(parsed.gpus.isEmpty)
        #expect(parsed.rejected.count == 1)
    }

    @Test(arguments: [
        "garbage", "0, 1, 2", "x, GPU-abc, Name, 100", "0, GPU-abc, Name, [N/A]", "-1, GPU-abc, Name, 100",
        "0, not-a-uuid, Name, 100", "0, GPU-abc, , 100", "\u{0}\u{1}\u{2}",
    ])
    func garbageLinesAreRejected(_ line: String) {
        let parsed = NvidiaSMI.parse(line)
        #expect(parsed.gpus.isEmpty)
    }

    @Test func namesWithCommasAndMixedGarbage() {
        let text = "  0 , GPU-a, Tesla V100, PCIe, 16GB , 16160 \r\nwarning: something\n1, GPU-b, NVIDIA H100 80GB HBM3, 81559\n1, GPU-c, Dup, 1\n"
        let parsed = NvidiaSMI.parse(text)
        #expect(parsed.gpus.map(\.name) == ["Tesla V100, PCIe, 16GB", "NVIDIA H100 80GB HBM3"])
        #expect(parsed.gpus.map(\.memoryMB) == [16160, 81559])
        #expect(parsed.rejected.count == 2)
    }
}

/// The real discovery path: spawn an executable, read its output, parse it.
@Suite struct NvidiaSMIDiscoveryTests {
    func script(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "fake-nvidia-smi-\(UUID().uuidString)"
        try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    @Test func runsTheProgramWithTheQueryArguments() throws {
        let log = NSTemporaryDirectory() + "args-\(UUID().uuidString)"
        let path = try script("echo \"$@\" > \(log)\ncat <<'X'\n\(try fixture("nvidia-smi-8gpu.txt"))X\n")
        guard case .found(let parsed) = NvidiaSMI.discover(path: path) else { Issue.record("not found"); return }
        #expect(parsed.gpus.count == 8)
        #expect(try String(contentsOfFile: log, encoding: .utf8) == NvidiaSMI.queryArguments.joined(separator: " ") + "\n")
    }

    @Test func reportsAFailingNvidiaSMI() throws {
        let path = try script("echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n")
        guard case .failed(let message) = NvidiaSMI.discover(path: path) else { Issue.record("expected failure"); return }
        #expect(message.contains("couldn't communicate"))
    }

    @Test func missingProgramMeansNotInstalled() {
        if case .found = NvidiaSMI.discover(path: "/nonexistent/nvidia-smi") { Issue.record("found a missing program") }
        let saved = getenv("PATH").map { String(cString: $0) }
        setenv("PATH", "/nonexistent", 1)
        defer { if let saved { setenv("PATH", saved, 1) } }
        guard case .notInstalled = NvidiaSMI.discover() else { Issue.record("expected notInstalled"); return }
    }
}
