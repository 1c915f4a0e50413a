"""The tiny layer between the code and the machine: how much memory a device has free."""

import os

import torch


def available_memory(device):
    """Free memory in bytes on the device (GPU), or available RAM (CPU)."""
    if str(device).startswith("cuda"):
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
