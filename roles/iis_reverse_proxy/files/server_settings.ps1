# myia.genai_stack.iis_reverse_proxy: server-level settings of ARR and URL Rewrite.
# Compares each value before writing it: $Ansible.Changed is true only when something was (or,
# under -WhatIf / check mode, would be) set; the list of changes is the result and the diff.
[CmdletBinding(SupportsShouldProcess)]
param (
    [Parameter(Mandatory)][int]$TimeoutSeconds,
    [Parameter(Mandatory)][int]$ResponseBufferLimit,
    [Parameter(Mandatory)][bool]$PreserveHostHeader,
    [Parameter(Mandatory)][string]$ForwardedForHeader,
    [Parameter(Mandatory)][string[]]$ServerVariables
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
Import-Module WebAdministration

$apphost = 'MACHINE/WEBROOT/APPHOST'
$wanted = @(
    # ARR proxy on; long generations (no 502.3); streamed tokens pass at once
    @{ Filter = 'system.webServer/proxy'; Name = 'enabled'; Value = $true }
    @{ Filter = 'system.webServer/proxy'; Name = 'timeout'; Value = [TimeSpan]::FromSeconds($TimeoutSeconds) }
    @{ Filter = 'system.webServer/proxy'; Name = 'responseBufferLimit'; Value = $ResponseBufferLimit }
    # backends see the public Host (ComfyUI compares Origin with Host); nothing to rewrite back
    @{ Filter = 'system.webServer/proxy'; Name = 'preserveHostHeader'; Value = $PreserveHostHeader }
    @{ Filter = 'system.webServer/proxy'; Name = 'reverseRewriteHostInResponseHeaders'; Value = -not $PreserveHostHeader }
    @{ Filter = 'system.webServer/proxy'; Name = 'xForwardedForHeaderName'; Value = $ForwardedForHeader }
    # ComfyUI /ws and Forge's queue
    @{ Filter = 'system.webServer/webSocket'; Name = 'enabled'; Value = $true }
)

$changes = [System.Collections.Generic.List[string]]::new()
foreach ($setting in $wanted) {
    $current = Get-WebConfigurationProperty -PSPath $apphost -Filter $setting.Filter -Name $setting.Name
    if ($current -is [Microsoft.IIs.PowerShell.Framework.ConfigurationAttribute]) {
        $current = $current.Value
    }
    if ("$current" -ne "$($setting.Value)") {
        $what = "$($setting.Filter)/@$($setting.Name)"
        if ($PSCmdlet.ShouldProcess($what, "set to '$($setting.Value)'")) {
            Set-WebConfigurationProperty -PSPath $apphost -Filter $setting.Filter -Name $setting.Name -Value $setting.Value
        }
        $changes.Add("${what}: '$current' -> '$($setting.Value)'")
    }
}

# rewrite rules may set only the server variables allowed here (the section is locked for sites)
$allowed = @(Get-WebConfiguration -PSPath $apphost -Filter 'system.webServer/rewrite/allowedServerVariables/add' |
        ForEach-Object { $_.name })
foreach ($variable in $ServerVariables) {
    if ($allowed -notcontains $variable) {
        if ($PSCmdlet.ShouldProcess('system.webServer/rewrite/allowedServerVariables', "add $variable")) {
            Add-WebConfigurationProperty -PSPath $apphost -Filter 'system.webServer/rewrite/allowedServerVariables' `
                -Name '.' -Value @{ name = $variable }
        }
        $changes.Add("system.webServer/rewrite/allowedServerVariables: + $variable")
    }
}

$Ansible.Changed = $changes.Count -gt 0
$Ansible.Result = @{ changes = @($changes) }
if ($changes.Count -gt 0) {
    $Ansible.Diff = @{ prepared = ($changes -join "`n") + "`n" }
}
