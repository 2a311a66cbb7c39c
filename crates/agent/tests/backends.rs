//! The backends end to end: vendor tools are run as programs (stand-ins that print the real fixture outputs),
//! failing or missing tools are reported without stopping the agent, and NVML's absence means no devices.

use std::path::{Path, PathBuf};
use wanka_agent::backend::{self, tools::Tool, tools::ToolBackend};
use wanka_agent::device::{Backend, Health};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/device-tools")
}

fn bin_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wanka-tools-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A stand-in for a vendor tool: a shell script choosing a fixture by its arguments.
fn tool(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\nF={}\nshow() {{ tail -n +2 \"$F/$1\"; }}\n{body}\n",
        fixtures().display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn npu_smi_is_run_per_view_and_per_chip() {
    let dir = bin_dir("npu");
    tool(
        &dir,
        "npu-smi",
        r#"case "$*" in
  "info") show ascend/npu-smi-info_910B3_x8_24.1.rc1.b030.txt ;;
  "info -t health -i 3 -c 0") show ascend/npu-smi-info-t-health_910A_alarm_multi-code.txt ;;
  "info -t health -i "*) show ascend/npu-smi-info-t-health_910A_ok.txt ;;
  "info -t topo") show ascend/npu-smi-info-t-topo_910B3_x8_HCCS.txt ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac"#,
    );
    let mut b = ToolBackend::new(Tool::NpuSmi, Some(dir));
    assert!(b.installed());
    let p = b.probe();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.devices.len(), 8);
    let sick = &p.devices[3];
    assert_eq!(sick.health, Health::Alarm);
    assert_eq!(sick.faults.len(), 3);
    assert!(!sick.telemetry().healthy);
    assert!(p.devices[2].telemetry().healthy);
    assert!(p.domains.is_empty(), "a full HCCS mesh is one island");
}

#[test]
fn nvidia_smi_and_metax_views_with_topology() {
    let dir = bin_dir("nv");
    tool(
        &dir,
        "nvidia-smi",
        r#"case "$*" in
  "-q -x") show nvidia/nvidia-smi-q-x_dual_a5000-v13.txt ;;
  "topo -m") show nvidia/nvidia-smi-topo-m_2gpu-NV12_8mlx5_tabs.txt ;;
esac"#,
    );
    tool(
        &dir,
        "mx-smi",
        r#"case "$*" in
  "") show metax/mx-smi_C500_x8_2.2.9.txt ;;
  "topo -m") show metax/mx-smi-topo-m_C500_x8_MetaXLink.txt ;;
esac"#,
    );
    let p = ToolBackend::new(Tool::NvidiaSmi, Some(dir.clone())).probe();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.devices.len(), 2);
    let p = ToolBackend::new(Tool::MxSmi, Some(dir)).probe();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.domains, [0, 0, 0, 0, 1, 1, 1, 1], "two MetaXLink islands");
}

#[test]
fn failing_and_missing_tools_are_reported_not_fatal() {
    let dir = bin_dir("fail");
    tool(
        &dir,
        "cnmon",
        "echo 'cnmon: the MLU driver is not loaded' >&2; exit 1",
    );
    let p = ToolBackend::new(Tool::Cnmon, Some(dir.clone())).probe();
    assert!(p.devices.is_empty());
    assert_eq!(p.errors[0].tool, "cnmon");
    assert!(
        p.errors[0].problem.contains("the MLU driver is not loaded"),
        "{:?}",
        p.errors
    );
    // A damaged table: the unreadable card is an error with its line, the readable one is kept.
    tool(
        &dir,
        "ixsmi",
        r#"show iluvatar/ixsmi_BI-V150_x16_4.1.0.txt | sed 's/^| 3    Iluvatar/| three Iluvatar/'"#,
    );
    let p = ToolBackend::new(Tool::Ixsmi, Some(dir.clone())).probe();
    assert_eq!(p.devices.len(), 15);
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!((p.errors[0].tool, p.errors[0].line), ("ixsmi", 17));
    let missing = ToolBackend::new(Tool::XpuSmi, Some(dir));
    if !missing.installed() {
        let mut missing = missing;
        let p = missing.probe();
        assert!(p.devices.is_empty() && p.errors.is_empty(), "{p:?}");
    }
}

#[test]
fn backends_by_name_and_nvml_without_a_driver() {
    let e = backend::select("cuda", None, None).err().unwrap();
    assert!(
        e.to_string().contains("unknown device backend 'cuda'"),
        "{e}"
    );
    assert!(e.to_string().contains("npu-smi"));
    let e = backend::select("simulated", None, None).err().unwrap();
    assert!(e.to_string().contains("--devices"), "{e}");
    let dir = bin_dir("sim");
    let bad = dir.join("devices.toml");
    std::fs::write(&bad, "model = \"H100\"\ncount = 8\ndomains = [0, 1]\n").unwrap();
    let e = backend::select("simulated", None, Some(bad.clone()))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("2 domains listed for 8 devices"),
        "{e}"
    );
    std::fs::write(&bad, "model = \"H100\"\ncuont = 8\n").unwrap();
    let e = backend::select("simulated", None, Some(bad)).err().unwrap();
    assert!(e.to_string().contains("cuont"), "{e}");
    // On a machine without the NVIDIA driver (CI), NVML is absent: no devices, and why.
    let mut nvml = wanka_agent::backend::nvml::Nvml::new();
    let p = nvml.probe();
    if let Some(why) = &nvml.unavailable {
        assert!(p.devices.is_empty());
        assert!(why.contains("libnvidia-ml"), "{why}");
    }
}

#[test]
fn simulated_faults_file_errors_name_the_line() {
    let dir = bin_dir("simfault");
    let devices = dir.join("devices.toml");
    std::fs::write(&devices, "model = \"Ascend-910B3\"\ncount = 4\n").unwrap();
    let mut b = backend::select("simulated", None, Some(devices.clone())).unwrap();
    assert_eq!(b.probe().devices.len(), 4);
    let faults = backend::simulated::faults_path(&devices);
    std::fs::write(
        &faults,
        "[[fault]]\ndevice = 2\nhealth = \"Alarm\"\ncodes = [\"80E01801\"]\n",
    )
    .unwrap();
    let p = b.probe();
    assert_eq!(p.devices[2].health, Health::Alarm);
    assert_eq!(p.devices[2].faults, ["80E01801"]);
    std::fs::write(&faults, "[[fault]]\ndevice = 2\nhealth = Alarm\n").unwrap();
    let p = b.probe();
    assert_eq!(p.devices.len(), 4, "the devices are still reported");
    assert_eq!((p.errors[0].tool, p.errors[0].line), ("simulated", 3));
    std::fs::write(&faults, "[[fault]]\ndevice = 9\nxid = [48]\n").unwrap();
    assert!(b.probe().errors[0].problem.contains("device 9 of 4"));
}

#[test]
fn every_vendor_tool_backend_runs_its_tool() {
    let dir = bin_dir("all");
    tool(
        &dir,
        "cnmon",
        "show cambricon/cnmon_mlu370-x8_x2_v5.10.13.txt",
    );
    tool(
        &dir,
        "hy-smi",
        "show hygon/hy-smi_K100_AI_x4_dtk24.04.1.txt",
    );
    tool(
        &dir,
        "rocm-smi",
        r#"case "$*" in
  *--showuse*) show amd/rocm-smi_json_rx7800xt_rocm6.2.4.txt ;;
  *) show hygon/rocm-smi_json_dtk24.04.3.txt ;;
esac"#,
    );
    tool(
        &dir,
        "mthreads-gmi",
        "show mthreads/mthreads-gmi_S4000_1.12.2_mem-anomaly.txt",
    );
    tool(&dir, "xpu_smi", "show kunlunxin/xpu_smi_R300_x2.txt");
    let cases = [
        (Tool::Cnmon, 2, Some("MLU370-X8")),
        // hy-smi names no model; DTK's rocm-smi JSON adds the (here redacted) name and memory of card 0.
        (Tool::HySmi, 4, Some("DCU xxxx")),
        (
            Tool::RocmSmi,
            1,
            Some("Navi 32 [Radeon RX 7700 XT / 7800 XT]"),
        ),
        (Tool::MthreadsGmi, 1, Some("MTT S4000")),
        (Tool::XpuSmi, 2, Some("R300")),
    ];
    for (t, n, name) in cases {
        let mut b = ToolBackend::new(t, Some(dir.clone()));
        let p = b.probe();
        assert!(p.errors.is_empty(), "{}: {:?}", b.name(), p.errors);
        assert_eq!(p.devices.len(), n, "{}", b.name());
        assert_eq!(p.devices[0].name.as_deref(), name, "{}", b.name());
    }
    let p = ToolBackend::new(Tool::HySmi, Some(dir)).probe();
    assert_eq!(p.devices[0].memory_total_mib, Some(65520));
}

#[test]
fn faults_injected_through_the_backend_are_written_and_read_back() {
    let dir = bin_dir("inject");
    let devices = dir.join("devices.toml");
    std::fs::write(&devices, "model = \"H100\"\ncount = 2\n").unwrap();
    let mut b = backend::select("simulated", None, Some(devices.clone())).unwrap();
    let fault = wanka_api::InjectFault {
        device: 1,
        xid: vec![79],
        ecc_corrected: Some(12),
        ..Default::default()
    };
    b.inject(&fault).unwrap();
    let p = b.probe();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.devices[1].health, Health::Critical);
    assert_eq!(p.devices[1].faults, ["xid-79"]);
    b.inject(&wanka_api::InjectFault {
        device: 1,
        clear: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(b.probe().devices[1].health, Health::Ok);
    let e = b
        .inject(&wanka_api::InjectFault {
            device: 2,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.contains("no device 2 of 2"), "{e}");
}
