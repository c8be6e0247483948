; Windows installer for ModelManager (NSIS 3, Modern UI 2).
; Build: packaging/windows/build.ps1 on Windows, or by hand from the repository root:
;   makensis /DDIST=dist\modelmanager /DASSETS=packaging\build /DOUT=dist\ModelManager-setup.exe packaging\windows\modelmanager.nsi
; DIST is the PyInstaller bundle; ASSETS holds appinfo.nsh (name, version, file types) and the
; icon, both written by packaging/desktop_files.py and packaging/icons.py.
Unicode true
SetCompressor /SOLID lzma

!ifndef DIST
  !error "define DIST: the PyInstaller one-folder bundle (dist\modelmanager)"
!endif
!ifndef ASSETS
  !error "define ASSETS: the folder packaging/desktop_files.py and packaging/icons.py wrote"
!endif
!ifndef OUT
  !define OUT "ModelManager-setup.exe"
!endif
!include "${ASSETS}/windows/appinfo.nsh"
!include "MUI2.nsh"

Name "${APP_NAME} ${APP_DISPLAY_VERSION}"
OutFile "${OUT}"
InstallDir "$PROGRAMFILES64\${APP_NAME}"
InstallDirRegKey HKLM "Software\${APP_NAME}" "InstallDir"
RequestExecutionLevel admin
VIProductVersion "${APP_VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "FileDescription" "${APP_SUMMARY}"
VIAddVersionKey "FileVersion" "${APP_DISPLAY_VERSION}"
VIAddVersionKey "ProductVersion" "${APP_DISPLAY_VERSION}"
VIAddVersionKey "LegalCopyright" "The ModelManager developers"

!define MUI_ICON "${ASSETS}/modelmanager.ico"
!define MUI_UNICON "${ASSETS}/modelmanager.ico"
!define MUI_FINISHPAGE_RUN "$INSTDIR\ModelManagerApp.exe"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_NAME}"
!define SHCNE_ASSOCCHANGED 0x08000000

Section "ModelManager" SecMain
  SectionIn RO
  SetShellVarContext all
  SetOutPath "$INSTDIR"
  File /r "${DIST}/*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\ModelManagerApp.exe"
  WriteRegStr HKLM "Software\${APP_NAME}" "InstallDir" "$INSTDIR"
  ; The app opens the checkpoint types it imports ("Open with" offers it; no type is taken).
  !insertmacro RegisterFileTypes
  WriteRegStr HKLM "Software\Classes\Applications\ModelManagerApp.exe\shell\open\command" "" \
    '"$INSTDIR\ModelManagerApp.exe" "%1"'
  System::Call 'shell32::SHChangeNotify(i ${SHCNE_ASSOCCHANGED}, i 0, p 0, p 0)'

  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${APP_DISPLAY_VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "The ModelManager developers"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\ModelManagerApp.exe"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  !insertmacro UnregisterFileTypes
  DeleteRegKey HKLM "Software\Classes\Applications\ModelManagerApp.exe"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  DeleteRegKey HKLM "Software\${APP_NAME}"
  System::Call 'shell32::SHChangeNotify(i ${SHCNE_ASSOCCHANGED}, i 0, p 0, p 0)'
  ; The program's folder only: repositories live in the user's data folder and are kept.
  RMDir /r "$INSTDIR"
SectionEnd
