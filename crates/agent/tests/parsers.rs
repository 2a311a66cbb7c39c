//! Every device-tool parser on real outputs (tests/fixtures/device-tools, sources in its SOURCES.md), and on
//! damaged copies of them: what cannot be read is an error naming the tool and line, and the devices that
//! can be read are still reported.

use wanka_agent::device::{Health, Probe};
use wanka_agent::parse::{
    cnmon, ixsmi, mthreads_gmi, mx_smi, npu_smi, nvidia_smi, rocm_smi, topology, xpu_smi,
};

/// A fixture's tool output (its first line, the `# source:` note, dropped).
fn fixture(path: &str) -> String {
    let full = format!(
        "{}/tests/fixtures/device-tools/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    let (first, rest) = text.split_once('\n').expect("a source line");
    assert!(
        first.starts_with("# source:"),
        "{path} lacks its source line"
    );
    rest.to_string()
}

fn clean(p: &Probe, what: &str) {
    assert!(p.errors.is_empty(), "{what}: {:?}", p.errors);
}

#[test]
fn npu_smi_info_across_versions_and_chips() {
    // (file, devices, name, HBM or DDR total, used of the first, warnings)
    let cases = [
        (
            "ascend/npu-smi-info_910B3_x8_24.1.rc1.b030.txt",
            8,
            "910B3",
            65536,
            3318,
            0,
        ),
        (
            "ascend/npu-smi-info_910B2C_x2_23.0.3.txt",
            2,
            "910B2C",
            65536,
            3317,
            0,
        ),
        (
            "ascend/npu-smi-info_910A_x8_22.0.3.1.txt",
            8,
            "910A",
            32768,
            0,
            0,
        ),
        (
            "ascend/npu-smi-info_910A_x8_24.1.RC2_warning.txt",
            8,
            "xxx",
            32768,
            0,
            2,
        ),
        (
            "ascend/npu-smi-info_310_x4_20.2.0.txt",
            4,
            "310",
            8192,
            2703,
            0,
        ),
        (
            "ascend/npu-smi-info_310_x4_21.0.4.txt",
            4,
            "310",
            8192,
            2703,
            0,
        ),
    ];
    for (file, n, name, total, used, warnings) in cases {
        let (chips, errors) = npu_smi::parse_info(&fixture(file));
        assert!(errors.is_empty(), "{file}: {errors:?}");
        assert_eq!(chips.len(), n, "{file}");
        let d = &chips[0].device;
        assert_eq!(d.name.as_deref(), Some(name), "{file}");
        assert_eq!(d.memory_total_mib, Some(total), "{file}");
        assert_eq!(d.memory_used_mib, Some(used), "{file}");
        let warned: Vec<u32> = chips
            .iter()
            .filter(|c| c.device.health == Health::Warning)
            .map(|c| c.device.index)
            .collect();
        assert_eq!(warned.len(), warnings, "{file}: {warned:?}");
    }
    // The 24.1 capture: chips 3 and 7 are at Warning, still schedulable (a precursor, not a fault).
    let (chips, _) =
        npu_smi::parse_info(&fixture("ascend/npu-smi-info_910A_x8_24.1.RC2_warning.txt"));
    let warned: Vec<u32> = chips
        .iter()
        .filter(|c| c.device.health == Health::Warning)
        .map(|c| c.device.index)
        .collect();
    assert_eq!(warned, [3, 7]);
    assert!(chips[3].device.telemetry().healthy);
    assert_eq!(chips[3].device.power_w, Some(206.9));
    // The 310's `Device` column is the logical id; its cards (NPU 6) carry four chips each.
    let (chips, _) = npu_smi::parse_info(&fixture("ascend/npu-smi-info_310_x4_21.0.4.txt"));
    let ids: Vec<(u32, u32, u32)> = chips
        .iter()
        .map(|c| (c.npu, c.chip, c.device.index))
        .collect();
    assert_eq!(ids, [(6, 0, 3), (6, 1, 4), (6, 2, 5), (6, 3, 6)]);
    assert_eq!(chips[1].device.temperature_c, Some(74.0));
    let (chips, _) =
        npu_smi::parse_info(&fixture("ascend/npu-smi-info_910B3_x8_24.1.rc1.b030.txt"));
    assert_eq!(chips[7].device.bus_id.as_deref(), Some("0000:42:00.0"));
    assert_eq!(chips[6].device.power_w, Some(103.8));
}

#[test]
fn npu_smi_health_board_and_mapping_views() {
    let ok = npu_smi::parse_health(&fixture("ascend/npu-smi-info-t-health_910A_ok.txt")).unwrap();
    assert_eq!(
        (ok.health, ok.codes.len(), ok.information),
        (Health::Ok, 0, None)
    );
    // Three error codes on one line, and the information spread over continuation lines.
    let alarm = npu_smi::parse_health(&fixture(
        "ascend/npu-smi-info-t-health_910A_alarm_multi-code.txt",
    ))
    .unwrap();
    assert_eq!(alarm.health, Health::Alarm);
    assert_eq!(alarm.codes, ["A4025021", "8C03A000", "8C084E00"]);
    let info = alarm.information.unwrap();
    assert!(info.starts_with("ascend_monitor adda heart beat lost error"));
    assert!(info.contains("event state=Heartbeat Lost."), "{info}");
    let mut d = wanka_agent::device::Device::new(0);
    npu_smi::apply_health(
        &mut d,
        &npu_smi::parse_health(&fixture(
            "ascend/npu-smi-info-t-health_910A_alarm_multi-code.txt",
        ))
        .unwrap(),
    );
    assert!(!d.telemetry().healthy);
    assert_eq!(
        d.faults,
        ["ascend-A4025021", "ascend-8C03A000", "ascend-8C084E00"]
    );
    // The same view inside a capture of several commands, as a diagnosis bundle holds it.
    let capture = fixture("ascend/capture_npu-smi_health_alarm_910A_after.txt");
    let section = capture
        .split("/usr/local/bin/npu-smi info -i 0 -c 0 -t health\n")
        .nth(1)
        .and_then(|s| s.split("\ncat ").next())
        .unwrap();
    assert_eq!(npu_smi::parse_health(section).unwrap().codes.len(), 3);
    // The capture's failed `-t board` call is an error output, not a health view.
    let board_error = capture
        .split("/usr/local/bin/npu-smi info -i 0 -t board\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap();
    let e = npu_smi::parse_health(board_error).unwrap_err();
    assert_eq!(e.tool, "npu-smi");
    assert!(e.to_string().contains("no `Health Status` line"), "{e}");

    let chip = npu_smi::parse_board(&fixture("ascend/npu-smi-info-t-board_chip_910A.txt"));
    assert!(chip.contains(&("Chip Name".into(), "910A".into())));
    assert!(chip.contains(&("PCIe Bus Info".into(), "0000:61:00.0".into())));
    let card = npu_smi::parse_board(&fixture("ascend/npu-smi-info-t-board_card_910A.txt"));
    assert!(card.contains(&("Chip Count".into(), "1".into())));
    assert!(card.contains(&("Software Version".into(), "23.0.5".into())));
    let usages = npu_smi::parse_board(&fixture("ascend/npu-smi-info-t-usages_910A.txt"));
    assert!(usages.contains(&("HBM Capacity(MB)".into(), "31129".into())));

    let (map, errors) = npu_smi::parse_mapping(&fixture(
        "ascend/npu-smi-info-m_training-server_model-9010_version-24.1.RC2.txt",
    ));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(map.len(), 8);
    assert_eq!(map[5], (5, 0, 5, "Ascend 910A".to_string()));
    let (map, errors) = npu_smi::parse_mapping(&fixture(
        "ascend/npu-smi-info-m_inference-server_model-3000_version-1.0.11-1.0.15.txt",
    ));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!map.is_empty());
}

#[test]
fn topology_matrices_with_tabs_spaces_empty_cells_and_no_legend() {
    // npu-smi: space separated, full HCCS mesh: one island.
    let t = topology::parse(
        "npu-smi",
        &fixture("ascend/npu-smi-info-t-topo_910B3_x8_HCCS.txt"),
    )
    .unwrap();
    assert_eq!(t.devices.len(), 8);
    assert_eq!(t.links[0][1], "HCCS");
    assert_eq!(t.cpu_affinity[2].as_deref(), Some("96-119"));
    assert!(t.domains().is_empty());
    // mx-smi: two MetaXLink islands of four.
    let t = topology::parse(
        "mx-smi",
        &fixture("metax/mx-smi-topo-m_C500_x8_MetaXLink.txt"),
    )
    .unwrap();
    assert_eq!(t.domains(), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(t.cpu_affinity[7].as_deref(), Some("0-31,64-95"));
    let t = topology::parse("mx-smi", &fixture("metax/mx-smi-topo-n_C500_x8_6nic.txt")).unwrap();
    assert_eq!((t.devices.len(), t.nics.len()), (8, 6));
    assert_eq!(t.domains(), [0, 0, 0, 0, 1, 1, 1, 1]);
    // nvidia-smi: tab separated, NV12 between the two GPUs, mlx5 NICs.
    let t = topology::parse(
        "nvidia-smi",
        &fixture("nvidia/nvidia-smi-topo-m_2gpu-NV12_8mlx5_tabs.txt"),
    )
    .unwrap();
    assert_eq!((t.devices.len(), t.nics.len()), (2, 8));
    assert_eq!(t.links[1][0], "NV12");
    assert!(t.domains().is_empty(), "one NVLink pair is one island");
    // Eight 4090s on PCIe (SYS everywhere), no legend, and an empty cell before `GPU NUMA ID`.
    let t = topology::parse(
        "nvidia-smi",
        &fixture("nvidia/nvidia-smi-topo-m_8x4090-SYS_2nic_tabs_nolegend.txt"),
    )
    .unwrap();
    assert_eq!((t.devices.len(), t.nics.len()), (8, 2));
    assert_eq!(t.links[6][7], "SYS");
    assert_eq!(t.cpu_affinity[4].as_deref(), Some("56-111,168-223"));
    assert!(t.domains().is_empty());
    // A truncated row names the tool and the line.
    let damaged = fixture("ascend/npu-smi-info-t-topo_910B3_x8_HCCS.txt")
        .replace("NPU3       HCCS       HCCS       HCCS       X          HCCS       HCCS       HCCS       HCCS       96-119", "NPU3       HCCS       HCCS");
    let e = topology::parse("npu-smi", &damaged).unwrap_err();
    assert_eq!((e.tool, e.line), ("npu-smi", 5));
}

#[test]
fn nvidia_smi_xml_across_schema_versions() {
    // (file, GPUs, name of the first, memory total, power of the first)
    let cases = [
        (
            "nvidia/nvidia-smi-q-x_a100-sxm4-v12.txt",
            1,
            "NVIDIA A100-SXM4-80GB",
            81920,
            Some(67.03),
        ),
        (
            "nvidia/nvidia-smi-q-x_a10g.txt",
            1,
            "NVIDIA A10G",
            23028,
            None,
        ),
        (
            "nvidia/nvidia-smi-q-x_tesla-t4.txt",
            1,
            "Tesla T4",
            15360,
            None,
        ),
        (
            "nvidia/nvidia-smi-q-x_rtx-3080-v13.txt",
            1,
            "NVIDIA GeForce RTX 3080",
            10240,
            None,
        ),
        (
            "nvidia/nvidia-smi-q-x_dual_2080-v13.txt",
            2,
            "NVIDIA GeForce RTX 2080",
            8192,
            None,
        ),
        (
            "nvidia/nvidia-smi-q-x_dual_a5000-v13.txt",
            2,
            "NVIDIA RTX A5000",
            24564,
            None,
        ),
        (
            "nvidia/nvidia-smi-q-x_pro-6000-maxq-blackwell-v13.txt",
            1,
            "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
            97887,
            Some(3.99),
        ),
    ];
    for (file, n, name, total, power) in cases {
        let p = nvidia_smi::parse_xml(&fixture(file));
        clean(&p, file);
        assert_eq!(p.devices.len(), n, "{file}");
        let d = &p.devices[0];
        assert_eq!(d.name.as_deref(), Some(name), "{file}");
        assert_eq!(d.memory_total_mib, Some(total), "{file}");
        if power.is_some() {
            assert_eq!(d.power_w, power, "{file}");
        }
        assert!(
            d.uuid.as_deref().is_some_and(|u| u.starts_with("GPU-")),
            "{file}"
        );
        assert!(d.telemetry().healthy, "{file}");
    }
    // The A100 is split into MIG instances with their own memory; the GPU's own total is the one read.
    let p = nvidia_smi::parse_xml(&fixture("nvidia/nvidia-smi-q-x_a100-sxm4-v12.txt"));
    assert_eq!(
        (p.devices[0].index, p.devices[0].memory_used_mib),
        (1, Some(50))
    );
    assert_eq!(p.devices[0].ecc_uncorrected, Some(0));
    // Truncated XML: an error with its line, no devices invented.
    let text = fixture("nvidia/nvidia-smi-q-x_tesla-t4.txt");
    let cut: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    let p = nvidia_smi::parse_xml(&cut);
    assert!(p.devices.is_empty());
    assert_eq!(p.errors[0].tool, "nvidia-smi");
    assert!(
        p.errors[0].problem.contains("never closed"),
        "{:?}",
        p.errors[0]
    );
}

#[test]
fn nvidia_smi_query_csv() {
    let p = nvidia_smi::parse_csv(&fixture(
        "nvidia/nvidia-smi-query-gpu-csv_rtx2080super_all-fields.txt",
    ));
    clean(&p, "csv");
    assert_eq!(p.devices.len(), 1);
    let d = &p.devices[0];
    assert_eq!(d.name.as_deref(), Some("NVIDIA GeForce RTX 2080 SUPER"));
    assert_eq!(
        (d.memory_total_mib, d.memory_used_mib),
        (Some(8192), Some(876))
    );
    assert_eq!(d.utilization, Some(2.0));
    assert_eq!(d.ecc_corrected, None, "[N/A] is unknown, not zero");
    // A capture with the commands as `#` lines and other output around the CSV.
    let p = nvidia_smi::parse_csv(&fixture(
        "nvidia/nvidia-smi-list-gpus-and-query-csv_ubuntu_465.27.txt",
    ));
    clean(&p, "capture");
    assert_eq!(p.devices.len(), 1);
    assert_eq!(p.devices[0].bus_id.as_deref(), Some("00000000:0C:00.0"));
    // A line cut short is reported; the other GPU is kept.
    let text = fixture("nvidia/nvidia-smi-query-gpu-csv_rtx2080super_all-fields.txt");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let full = lines[1].clone();
    lines[1] = full.replacen(", 0, Enabled", ", 1, Enabled", 1);
    lines.push(full.split(", GPU-").next().unwrap().to_string());
    let p = nvidia_smi::parse_csv(&lines.join("\n"));
    assert_eq!(p.devices.len(), 1);
    assert_eq!((p.errors[0].tool, p.errors[0].line), ("nvidia-smi", 3));
}

#[test]
fn cnmon_4_and_5_layouts() {
    let p = cnmon::parse(&fixture("cambricon/cnmon_mlu370-x4_x3_v4.20.11.txt"));
    clean(&p, "cnmon 4");
    assert_eq!(p.devices.len(), 3);
    let d = &p.devices[1];
    assert_eq!((d.index, d.name.as_deref()), (1, Some("MLU370-X4")));
    assert_eq!(
        (d.memory_used_mib, d.memory_total_mib),
        (Some(0), Some(23308))
    );
    assert_eq!((d.temperature_c, d.power_w), (Some(33.0), Some(25.0)));
    assert_eq!(d.ecc_uncorrected, None, "N/A");
    let p = cnmon::parse(&fixture("cambricon/cnmon_mlu370-x8_x2_v5.10.13.txt"));
    clean(&p, "cnmon 5");
    assert_eq!(p.devices.len(), 2);
    assert_eq!(p.devices[1].bus_id.as_deref(), Some("0000:3D:00.0"));
    assert_eq!(p.devices[1].temperature_c, Some(39.0));
    // A record whose second row is missing: an error at its line, the other card still read.
    let text = fixture("cambricon/cnmon_mlu370-x8_x2_v5.10.13.txt");
    let damaged = text.replacen(
        "|  0%   32C        106 W/ 250 W |     0 MiB/ 23374 MiB | N/A           Default |\n",
        "",
        1,
    );
    let p = cnmon::parse(&damaged);
    assert_eq!(p.devices.len(), 1);
    assert_eq!((p.errors[0].tool, p.errors[0].line), ("cnmon", 7));
}

#[test]
fn hygon_and_amd_tables_and_json() {
    let p = rocm_smi::parse_table("hy-smi", &fixture("hygon/hy-smi_K100_AI_x4_dtk24.04.1.txt"));
    clean(&p, "hy-smi");
    assert_eq!(p.devices.len(), 4);
    assert_eq!(
        (p.devices[3].temperature_c, p.devices[3].power_w),
        (Some(49.0), Some(138.0))
    );
    let p = rocm_smi::parse_table("rocm-smi", &fixture("hygon/rocm-smi_dcu_x4_table.txt"));
    clean(&p, "rocm-smi table");
    assert_eq!(p.devices.len(), 4);
    assert_eq!(p.devices[1].power_w, Some(41.0));
    let p = rocm_smi::parse_json("rocm-smi", &fixture("hygon/rocm-smi_json_dtk24.04.3.txt"));
    clean(&p, "dtk json");
    assert_eq!(
        (p.devices[0].memory_total_mib, p.devices[0].memory_used_mib),
        (Some(65520), Some(2))
    );
    assert_eq!(p.devices[0].temperature_c, Some(41.0));
    let p = rocm_smi::parse_json(
        "rocm-smi",
        &fixture("amd/rocm-smi_json_rx7800xt_rocm6.2.4.txt"),
    );
    clean(&p, "rocm json");
    // Bytes in ROCm's keys, MiB in DTK's.
    assert_eq!(
        (p.devices[0].memory_total_mib, p.devices[0].memory_used_mib),
        (Some(16368), Some(11077))
    );
    assert_eq!(p.devices[0].utilization, Some(100.0));
    let e = rocm_smi::parse_json("rocm-smi", "{\n  \"card0\": {\n    \"GPU use (%)\": 5,\n").errors;
    assert_eq!((e[0].tool, e[0].line), ("rocm-smi", 3));
}

#[test]
fn metax_iluvatar_kunlunxin_and_moore_threads() {
    let p = mx_smi::parse(&fixture("metax/mx-smi_C500_x8_2.2.9.txt"));
    clean(&p, "mx-smi 2.2.9");
    assert_eq!(p.devices.len(), 8);
    let d = &p.devices[3];
    assert_eq!((d.index, d.name.as_deref()), (3, Some("MetaX C500")));
    assert_eq!(
        (d.memory_used_mib, d.memory_total_mib, d.power_w),
        (Some(826), Some(65536), Some(60.0))
    );
    let p = mx_smi::parse(&fixture("metax/mx-smi_MXC550_x8_2.1.6.txt"));
    clean(&p, "mx-smi 2.1.6");
    assert_eq!(p.devices.len(), 8);
    assert_eq!(
        (p.devices[2].name.as_deref(), p.devices[2].power_w),
        (Some("MXC550"), Some(47.0))
    );

    let p = ixsmi::parse(&fixture("iluvatar/ixsmi_BI-V150_x16_4.1.0.txt"));
    clean(&p, "ixsmi");
    assert_eq!(p.devices.len(), 16);
    assert_eq!(p.devices[0].name.as_deref(), Some("Iluvatar BI-V150"));
    assert_eq!(p.devices[0].power_w, None, "N/A / N/A");
    assert_eq!(p.devices[1].power_w, Some(93.0));
    assert_eq!(p.devices[15].memory_total_mib, Some(32768));

    let p = xpu_smi::parse(&fixture("kunlunxin/xpu_smi_R300_x2.txt"));
    clean(&p, "xpu_smi");
    assert_eq!(p.devices.len(), 2);
    assert_eq!(
        (p.devices[1].name.as_deref(), p.devices[1].memory_total_mib),
        (Some("R300"), Some(32768))
    );
    assert_eq!(p.devices[1].bus_id.as_deref(), Some("0000:56:00.0"));

    // More memory used than there is: kept as read, flagged, still schedulable (Warning).
    let p = mthreads_gmi::parse(&fixture(
        "mthreads/mthreads-gmi_S4000_1.12.2_mem-anomaly.txt",
    ));
    clean(&p, "mthreads-gmi");
    let d = &p.devices[0];
    assert_eq!(
        (d.name.as_deref(), d.memory_used_mib, d.memory_total_mib),
        (Some("MTT S4000"), Some(44302), Some(32768))
    );
    assert_eq!((d.utilization, d.temperature_c), (Some(88.0), Some(65.0)));
    assert_eq!(d.health, Health::Warning);
    assert!(
        d.faults[0].starts_with("memory-accounting"),
        "{:?}",
        d.faults
    );
}

#[test]
fn unreadable_records_are_errors_with_tool_and_line_and_the_rest_is_kept() {
    let text = fixture("ascend/npu-smi-info_910B3_x8_24.1.rc1.b030.txt");
    let damaged = text.replacen(
        "| 2     910B3               | OK  ",
        "| two   910B3               | OK  ",
        1,
    );
    let (chips, errors) = npu_smi::parse_info(&damaged);
    assert_eq!(chips.len(), 7);
    assert_eq!((errors[0].tool, errors[0].line), ("npu-smi", 13));
    assert!(
        errors[0].to_string().contains("npu-smi: line 13"),
        "{}",
        errors[0]
    );
    let damaged = text.replacen("| OK            | 99.8", "| Smoking       | 99.8", 1);
    let (chips, errors) = npu_smi::parse_info(&damaged);
    assert_eq!(chips.len(), 8);
    assert!(
        errors[0].problem.contains("unknown health 'Smoking'"),
        "{errors:?}"
    );
    assert!(!chips[3].device.telemetry().healthy || chips[3].device.health == Health::Warning);
    let p = ixsmi::parse("no table here\n");
    assert_eq!(p.errors[0].tool, "ixsmi");
    let p = xpu_smi::parse("Runtime Version: 4.31\n");
    assert!(p.errors[0].problem.contains("DEVICES"));
}
