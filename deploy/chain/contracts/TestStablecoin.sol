// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title A stablecoin for local development and tests (6 decimals, like USDC).
/// @notice Production configuration points paystream at a real token instead.
/// Like USDC, the owner can blacklist an address: it can then neither send nor
/// receive the token (the fault suite uses it for a payee the token refuses).
contract TestStablecoin is ERC20, Ownable {
    mapping(address => bool) public blacklisted;

    error Blacklisted(address account);

    event BlacklistChanged(address indexed account, bool blacklisted);

    constructor(address owner_) ERC20("Paystream Test Dollar", "PTUSD") Ownable(owner_) {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint test funds (owner only).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Refuse (or allow again) every transfer from or to `account` (owner only).
    function setBlacklisted(address account, bool value) external onlyOwner {
        blacklisted[account] = value;
        emit BlacklistChanged(account, value);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blacklisted[from]) revert Blacklisted(from);
        if (blacklisted[to]) revert Blacklisted(to);
        super._update(from, to, value);
    }
}
